package modelstream.flink;

import static modelstream.flink.DataRecordDeserializationSchemaTest.record;
import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.junit.jupiter.api.Test;

class ModelRecordDeserializationSchemaTest {
    private static Row read(ConsumerRecord<byte[], byte[]> record) {
        List<Row> rows = new ArrayList<>();
        new ModelRecordDeserializationSchema().deserialize(record, new Collector<>() {
            @Override
            public void collect(Row row) {
                rows.add(row);
            }

            @Override
            public void close() {}
        });
        assertEquals(1, rows.size());
        return rows.get(0);
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
