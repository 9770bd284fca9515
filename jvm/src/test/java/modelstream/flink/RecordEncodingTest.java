package modelstream.flink;

import static modelstream.flink.TestBytes.bytes;
import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;

class RecordEncodingTest {
    private static final DataTopics TOPICS = DataTopics.parse(DataTopicsTest.CONFIG);
    private static final DataTopics.Topic AUTO = TOPICS.named("wine");

    @Test
    void autoTellsJsonConfluentProtobufAndWineApart() {
        assertSame(RecordEncoding.JSON_RECORD, RecordEncoding.of(null, AUTO, utf8("{\"a\":1}")));
        assertSame(RecordEncoding.JSON_RECORD, RecordEncoding.of(null, AUTO, utf8(" \r\n\t{}")));
        assertSame(RecordEncoding.WINE_RECORD, RecordEncoding.of(null, AUTO, utf8(" [1]")));
        assertSame(RecordEncoding.WINE_RECORD, RecordEncoding.of(null, AUTO, bytes(0x09, 1, 2)));
        assertSame(RecordEncoding.WINE_RECORD, RecordEncoding.of(null, AUTO, new byte[0]));
        assertSame(RecordEncoding.WINE_RECORD, RecordEncoding.of(null, AUTO, utf8("   ")));
        RecordEncoding framed = RecordEncoding.of(null, AUTO, bytes(0, 0, 0, 0, 1, 0));
        assertEquals(new RecordEncoding(RecordEncoding.PROTOBUF, ""), framed);
    }

    @Test
    void confluentProtobufOnAnAutoTopicCarriesTheTopicsMessage() {
        DataTopics.Topic auto = DataTopics.parse("t\t255\tloans.Loan\t3\tt").named("t");
        assertEquals(new RecordEncoding(RecordEncoding.PROTOBUF, "loans.Loan"),
                RecordEncoding.of(null, auto, bytes(0, 0, 0, 0, 1, 0)));
    }

    @Test
    void aDeclaredTopicIsNotSniffed() {
        assertSame(RecordEncoding.OIP_RECORD, RecordEncoding.of(null, TOPICS.named("oip-in"), utf8("{}")));
        assertSame(RecordEncoding.JSON_RECORD, RecordEncoding.of(null, TOPICS.named("json-in"), bytes(0x09)));
        assertEquals(new RecordEncoding(RecordEncoding.PROTOBUF, "loans.LoanApplication"),
                RecordEncoding.of(null, TOPICS.named("loans-pb"), utf8("{}")));
    }

    @Test
    void theContentTypeHeaderWins() {
        assertSame(RecordEncoding.JSON_RECORD,
                RecordEncoding.of("application/json", TOPICS.named("oip-in"), bytes(0x0a)));
        assertEquals(RecordEncoding.UNSUPPORTED, RecordEncoding.of("text/plain", AUTO, utf8("{}")).code);
    }

    @Test
    void metaLongerThanItsLengthFieldIsCutOnACharacter() {
        String longName = "é".repeat(40_000); // 80,000 bytes
        byte[] meta = new RecordEncoding(RecordEncoding.UNSUPPORTED, longName).metaBytes;
        assertEquals(65_534, meta.length);
        assertArrayEquals(utf8("é".repeat(32_767)), meta);
    }
}
