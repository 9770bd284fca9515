package modelstream.flink;

import static modelstream.flink.TestBytes.bytes;
import static modelstream.flink.TestBytes.concat;
import static modelstream.flink.TestBytes.confluent;
import static modelstream.flink.TestBytes.stringField;
import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class DataTypeTest {
    private static final DataTopics TOPICS = DataTopics.parse(DataTopicsTest.CONFIG);
    private static final DataTopics.Topic AUTO = TOPICS.named("wine");
    private static final DataTopics.Topic LOANS = TOPICS.named("loans-pb"); // data type in field 12
    private static final byte[] LOAN =
            concat(stringField(1, "id-7"), stringField(12, "loans-eu"), bytes(0x10, 3));
    private static final RecordEncoding LOAN_RECORD = LOANS.declared;

    @Test
    void theHeaderWinsWhenNotEmpty() {
        byte[] wine = stringField(12, "red");
        assertEquals("white", DataType.of("white", RecordEncoding.WINE_RECORD, AUTO, wine));
        assertEquals("red", DataType.of("", RecordEncoding.WINE_RECORD, AUTO, wine));
        assertEquals("red", DataType.of(null, RecordEncoding.WINE_RECORD, AUTO, wine));
        RecordEncoding csv = new RecordEncoding(RecordEncoding.UNSUPPORTED, "text/csv");
        assertEquals("x", DataType.of("x", csv, AUTO, wine));
    }

    @Test
    void readsEachEncodingsOwnField() {
        byte[] wine = concat(stringField(1, "not this"), stringField(12, "red"));
        assertEquals("red", DataType.of(null, RecordEncoding.WINE_RECORD, AUTO, wine));
        byte[] json = utf8("{\"dataType\":\"red\"}");
        assertEquals("red", DataType.of(null, RecordEncoding.JSON_RECORD, AUTO, json));
        byte[] oip = concat(stringField(1, "wine-v2"), stringField(2, "1"), stringField(3, "req-1"));
        assertEquals("wine-v2", DataType.of(null, RecordEncoding.OIP_RECORD, AUTO, oip));
        assertEquals("loans-eu", DataType.of(null, LOAN_RECORD, LOANS, LOAN));
    }

    @Test
    void readsAUserFieldInsideConfluentFraming() {
        // message indexes [0] as the single byte 0
        assertEquals("loans-eu", DataType.of(null, LOAN_RECORD, LOANS, confluent(bytes(0), LOAN)));
        // indexes [1, 0, 2]: count 3 (zigzag 6), then 1 (2), 0 (0), 2 (4)
        assertEquals("loans-eu", DataType.of(null, LOAN_RECORD, LOANS, confluent(bytes(6, 2, 0, 4), LOAN)));
        // multi-byte varints: count 2 (4), then 300 (zigzag 600: 0xd8 0x04), 64 (128: 0x80 0x01)
        assertEquals("loans-eu",
                DataType.of(null, LOAN_RECORD, LOANS, confluent(bytes(4, 0xd8, 0x04, 0x80, 0x01), LOAN)));
    }

    @Test
    void fallsBackToTheTopicsDefault() {
        assertEquals("wine", DataType.of(null, RecordEncoding.WINE_RECORD, AUTO, stringField(1, "x")));
        assertEquals("wine", DataType.of(null, RecordEncoding.WINE_RECORD, AUTO, bytes(0xff, 0xff)));
        assertEquals("wine", DataType.of(null, RecordEncoding.WINE_RECORD, AUTO, new byte[0]));
        assertEquals("wine", DataType.of(null, RecordEncoding.JSON_RECORD, AUTO, utf8("{\"dataType\":")));
        assertEquals("wine", DataType.of(null, RecordEncoding.JSON_RECORD, AUTO, utf8("{\"dataType\":1}")));
        assertEquals("wine", DataType.of(null, RecordEncoding.OIP_RECORD, AUTO, stringField(2, "1")));
        assertEquals("wine", DataType.of(null, new RecordEncoding(RecordEncoding.UNSUPPORTED, "x"), AUTO,
                stringField(12, "red")));
        // a protobuf topic without a data-type field, and one whose framing is cut short
        DataTopics.Topic noField = DataTopics.parse("t\t3\tloans.Loan\t0\tloans").named("t");
        assertEquals("loans", DataType.of(null, noField.declared, noField, LOAN));
        assertEquals("loans", DataType.of(null, LOAN_RECORD, LOANS, bytes(0, 0, 0, 0, 1)));
        assertEquals("loans", DataType.of(null, LOAN_RECORD, LOANS, confluent(bytes(6, 2), new byte[0])));
        // a count of -1
        assertEquals("loans", DataType.of(null, LOAN_RECORD, LOANS, confluent(bytes(1), LOAN)));
        assertEquals("loans", DataType.of(null, LOAN_RECORD, LOANS, confluent(bytes(0), new byte[0])));
    }
}
