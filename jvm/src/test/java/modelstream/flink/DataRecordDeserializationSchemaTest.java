package modelstream.flink;

import static modelstream.flink.TestBytes.bytes;
import static modelstream.flink.TestBytes.concat;
import static modelstream.flink.TestBytes.confluent;
import static modelstream.flink.TestBytes.stringField;
import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.record.TimestampType;
import org.apache.flink.types.Row;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;

class DataRecordDeserializationSchemaTest {
    private final DataRecordDeserializationSchema schema =
            new DataRecordDeserializationSchema(DataTopicsTest.CONFIG);

    /** A record with headers given as name, value pairs. */
    static ConsumerRecord<byte[], byte[]> record(String topic, byte[] key, byte[] value, String... headers) {
        RecordHeaders recordHeaders = new RecordHeaders();
        for (int i = 0; i < headers.length; i += 2) {
            recordHeaders.add(headers[i], headers[i + 1] == null ? null : utf8(headers[i + 1]));
        }
        return new ConsumerRecord<>(topic, 4, 1234L, 1_700_000_000_123L, TimestampType.CREATE_TIME,
                -1, -1, key, value, recordHeaders, Optional.empty());
    }

    /** The parts of a frame: encoding, topic, partition, offset, timestamp, key, meta, value. */
    private static Object[] unframe(byte[] framed) {
        ByteBuffer in = ByteBuffer.wrap(framed);
        int encoding = in.get() & 0xff;
        int topic = in.getShort() & 0xffff;
        int partition = in.getInt();
        long offset = in.getLong();
        long timestamp = in.getLong();
        int keyLength = in.getInt();
        byte[] key = keyLength < 0 ? null : new byte[keyLength];
        if (key != null) in.get(key);
        byte[] meta = new byte[in.getShort() & 0xffff];
        in.get(meta);
        byte[] value = new byte[in.getInt()];
        in.get(value);
        assertEquals(0, in.remaining());
        String metaText = new String(meta, StandardCharsets.UTF_8);
        return new Object[] {encoding, topic, partition, offset, timestamp, key, metaText, value};
    }

    private Row read(ConsumerRecord<byte[], byte[]> record) {
        return OneRow.of(schema, record);
    }

    @Test
    void aWineRecordIsFramedWithWhereItCameFrom() {
        byte[] wine = concat(stringField(1, "x"), stringField(12, "red"));
        Row row = read(record("wine", utf8("k"), wine));
        assertEquals("red", row.getField(0));
        Object[] parts = unframe((byte[]) row.getField(1));
        assertEquals(RecordEncoding.WINE, parts[0]);
        assertEquals(0, parts[1]);
        assertEquals(4, parts[2]);
        assertEquals(1234L, parts[3]);
        assertEquals(1_700_000_000_123L, parts[4]);
        assertArrayEquals(utf8("k"), (byte[]) parts[5]);
        assertEquals("", parts[6]);
        assertArrayEquals(wine, (byte[]) parts[7]);
        byte[] expected =
                RecordFrame.of(RecordEncoding.WINE_RECORD, 0, 4, 1234L, 1_700_000_000_123L, utf8("k"), wine);
        assertArrayEquals(expected, (byte[]) row.getField(1));
    }

    @Test
    void aTombstoneWithoutKeyHasTheDefaultDataTypeAndNoBytes() {
        Row row = read(record("wine", null, null));
        assertEquals("wine", row.getField(0));
        Object[] parts = unframe((byte[]) row.getField(1));
        assertEquals(RecordEncoding.WINE, parts[0]);
        assertEquals(null, parts[5]);
        assertEquals(0, ((byte[]) parts[7]).length);
    }

    @Test
    void headersDecideEncodingAndDataType() {
        byte[] json = utf8("{\"dataType\": \"red\"}");
        Row row =
                read(record("oip-in", null, json, "content-type", "Application/JSON", "data-type", "white"));
        assertEquals("white", row.getField(0));
        assertEquals(RecordEncoding.JSON, unframe((byte[]) row.getField(1))[0]);
        Row own = read(record("oip-in", null, json, "content-type", "application/json", "data-type", ""));
        assertEquals("red", own.getField(0));
        Row csv = read(record("wine", null, utf8("1,2"), "content-type", "text/csv; header=absent"));
        assertEquals("wine", csv.getField(0));
        Object[] parts = unframe((byte[]) csv.getField(1));
        assertEquals(RecordEncoding.UNSUPPORTED, parts[0]);
        assertEquals("text/csv; header=absent", parts[6]);
        // the last header of a name counts; a header without a value is no header
        Row last = read(record("json-in", null, json, "data-type", "a", "data-type", "b"));
        assertEquals("b", last.getField(0));
        Row none = read(record("json-in", null, json, "data-type", null, "content-type", null));
        assertEquals("red", none.getField(0));
        assertEquals(RecordEncoding.JSON, unframe((byte[]) none.getField(1))[0]);
    }

    @Test
    void eachTopicIsReadByItsSpec() {
        byte[] loan = confluent(bytes(0), stringField(12, "loans-eu"));
        Row row = read(record("loans-pb", null, loan));
        assertEquals("loans-eu", row.getField(0));
        Object[] parts = unframe((byte[]) row.getField(1));
        assertEquals(RecordEncoding.PROTOBUF, parts[0]);
        assertEquals(1, parts[1]);
        assertEquals("loans.LoanApplication", parts[6]);
        Row oip = read(record("oip-in", null, stringField(1, "wine-v2")));
        assertEquals("wine-v2", oip.getField(0));
        assertEquals(3, unframe((byte[]) oip.getField(1))[1]);
        Row auto = read(record("wine", null, utf8(" {\"b\": [1], \"dataType\": \"rosé\"}")));
        assertEquals("rosé", auto.getField(0));
        assertEquals(RecordEncoding.JSON, unframe((byte[]) auto.getField(1))[0]);
    }

    @Test
    void feedbackIsKeyedByItsDataTypeWhateverItsHeadersSay() {
        byte[] json = utf8("{\"dataType\": \"wine\", \"record_id\": \"r-1\", \"label\": \"6\"}");
        Row row = read(record("feedback", utf8("wine"), json, "content-type", "application/json"));
        assertEquals("wine", row.getField(0));
        Object[] parts = unframe((byte[]) row.getField(1));
        assertEquals(RecordEncoding.FEEDBACK, parts[0]);
        assertEquals(5, parts[1]);
        assertArrayEquals(json, (byte[]) parts[7]);
        // without a dataType the feedback topic gives none: the job dead-letters it
        assertEquals("", read(record("feedback", null, utf8("{\"record_id\": \"r-1\"}"))).getField(0));
    }

    @Test
    void survivesJavaSerializationAsFlinkShipsIt() throws Exception {
        DataRecordDeserializationSchema copy =
                InstantiationUtil.clone(schema, getClass().getClassLoader());
        assertEquals("red", copy.read(record("json-in", null, utf8("{\"dataType\": \"red\"}"))).getField(0));
    }

    @Test
    void aRecordOfAnotherTopicIsAnError() {
        assertThrows(IllegalArgumentException.class, () -> read(record("models", null, new byte[0])));
    }

    @Test
    void producesDataTypeAndFrame() {
        assertEquals(Types.ROW(Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO),
                schema.getProducedType());
    }
}
