package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class DataTopicsTest {
    static final String CONFIG = String.join("\n",
            "wine\t255\t\t0\twine",
            "loans-pb\t3\tloans.LoanApplication\t12\tloans",
            "json-in\t1\t\t0\tjson-in",
            "oip-in\t2\t\t0\toip-in",
            "wine-pb\t0\t\t0\twine",
            "feedback\t5\t\t0\t");

    @Test
    void readsEachLineInIndexOrder() {
        DataTopics topics = DataTopics.parse(CONFIG);
        assertEquals(6, topics.size());
        DataTopics.Topic loans = topics.named("loans-pb");
        assertEquals(1, loans.index);
        assertEquals(RecordEncoding.PROTOBUF, loans.encoding);
        assertEquals("loans.LoanApplication", loans.message);
        assertEquals(12, loans.dataTypeField);
        assertEquals("loans", loans.defaultDataType);
        assertEquals(new RecordEncoding(RecordEncoding.PROTOBUF, "loans.LoanApplication"), loans.declared);
        assertNull(topics.get(0).declared); // AUTO: decided per record
        assertSame(RecordEncoding.JSON_RECORD, topics.named("json-in").declared);
        assertSame(RecordEncoding.OIP_RECORD, topics.named("oip-in").declared);
        assertSame(RecordEncoding.WINE_RECORD, topics.named("wine-pb").declared);
    }

    @Test
    void refusesWhatIsNotAConfiguration() {
        assertThrows(IllegalArgumentException.class, () -> DataTopics.parse(""));
        assertThrows(IllegalArgumentException.class, () -> DataTopics.parse("wine\t255\t\t0"));
        assertThrows(IllegalArgumentException.class, () -> DataTopics.parse("wine\tauto\t\t0\twine"));
        assertThrows(IllegalArgumentException.class, () -> DataTopics.parse("wine\t4\t\t0\twine"));
        assertThrows(IllegalArgumentException.class, () -> DataTopics.parse("a\t0\t\t0\ta\na\t1\t\t0\ta"));
        DataTopics topics = DataTopics.parse(CONFIG);
        assertThrows(IllegalArgumentException.class, () -> topics.named("models"));
    }
}
