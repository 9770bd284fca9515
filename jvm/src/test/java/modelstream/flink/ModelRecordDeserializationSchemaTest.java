package modelstream.flink;

import static modelstream.flink.DataRecordDeserializationSchemaTest.record;
import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class ModelRecordDeserializationSchemaTest {
    private static Row read(ConsumerRecord<byte[], byte[]> record) {
        return OneRow.of(new ModelRecordDeserializationSchema(), record);
    }

    @Test
    void carriesPartitionOffsetValueAndContentType() {
        String schemaType = "application/x-protobuf; messageType=modelstream.RecordSchema";
        Row row = read(record("models", null, utf8("m"), "content-type", schemaType));
        assertEquals(4, row.getField(0));
        assertEquals(1234L, row.getField(1));
        assertArrayEquals(utf8("m"), (byte[]) row.getField(2));
        assertEquals(schemaType, row.getField(3));
    }

    @Test
    void noHeaderIsEmptyAndATombstoneIsEmptyBytes() {
        Row row = read(new ConsumerRecord<>("models", 0, 9L, null, null));
        assertEquals(0, ((byte[]) row.getField(2)).length);
        assertEquals("", row.getField(3));
        assertEquals(
                Types.ROW(Types.INT, Types.LONG, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                        Types.STRING),
                new ModelRecordDeserializationSchema().getProducedType());
    }
}
