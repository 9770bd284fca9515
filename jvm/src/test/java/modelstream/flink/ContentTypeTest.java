package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;

class ContentTypeTest {
    private static final DataTopics TOPICS = DataTopics.parse(DataTopicsTest.CONFIG);
    private static final DataTopics.Topic AUTO = TOPICS.named("wine");
    private static final DataTopics.Topic LOANS = TOPICS.named("loans-pb");

    private static RecordEncoding encoding(String header, DataTopics.Topic topic) {
        return ContentType.parse(header).encoding(topic);
    }

    @Test
    void parsesMediaTypeAndMessageType() {
        ContentType plain = ContentType.parse(" Application/JSON ");
        assertEquals("application/json", plain.mediaType);
        assertEquals("", plain.messageType);
        ContentType typed =
                ContentType.parse("application/x-protobuf; charset=x ;MESSAGETYPE = \"a.B\" ; z=1");
        assertEquals("application/x-protobuf", typed.mediaType);
        assertEquals("a.B", typed.messageType);
        assertEquals("a.B", ContentType.parse("application/protobuf;messagetype=a.B").messageType);
        assertEquals("\"a.B", ContentType.parse("application/protobuf;messageType=\"a.B").messageType);
        assertEquals("", ContentType.parse("application/protobuf;messageType").messageType);
        assertEquals("first", ContentType.parse("x;messageType=first;messageType=second").messageType);
    }

    @Test
    void jsonIsJsonOnAnyTopic() {
        assertSame(RecordEncoding.JSON_RECORD, encoding("application/json", LOANS));
        assertSame(RecordEncoding.JSON_RECORD, encoding("Application/Json; charset=utf-8", AUTO));
    }

    @Test
    void protobufMessageTypesNameTheEncoding() {
        String oip = "application/x-protobuf; messageType=inference.ModelInferRequest";
        assertSame(RecordEncoding.OIP_RECORD, encoding(oip, AUTO));
        String quoted = "application/protobuf;MessageType=\"inference.ModelInferRequest\"";
        assertSame(RecordEncoding.OIP_RECORD, encoding(quoted, AUTO));
        String wine = "application/x-protobuf;messageType=modelstream.WineRecord";
        assertSame(RecordEncoding.WINE_RECORD, encoding(wine, LOANS));
        assertEquals(new RecordEncoding(RecordEncoding.PROTOBUF, "loans.Other"),
                encoding("application/protobuf; messagetype=loans.Other", AUTO));
    }

    @Test
    void protobufWithoutMessageTypeIsTheTopicsProtobufEncoding() {
        assertEquals(new RecordEncoding(RecordEncoding.PROTOBUF, "loans.LoanApplication"),
                encoding("application/x-protobuf", LOANS));
        assertEquals(RecordEncoding.WINE_RECORD, encoding("application/x-protobuf", TOPICS.named("wine-pb")));
        assertEquals(
                RecordEncoding.OIP_RECORD, encoding("application/x-protobuf; a=b", TOPICS.named("oip-in")));
        assertEquals(new RecordEncoding(RecordEncoding.UNSUPPORTED, "application/x-protobuf"),
                encoding("application/x-protobuf", AUTO));
        assertEquals(new RecordEncoding(RecordEncoding.UNSUPPORTED, "application/x-protobuf"),
                encoding("application/x-protobuf", TOPICS.named("json-in")));
    }

    @Test
    void anyOtherMediaTypeIsUnsupportedWithTheWholeHeader() {
        assertEquals(new RecordEncoding(RecordEncoding.UNSUPPORTED, "text/csv; header=present"),
                encoding("text/csv; header=present", LOANS));
        assertEquals(new RecordEncoding(RecordEncoding.UNSUPPORTED, "application/avro;messageType=a.B"),
                encoding("application/avro;messageType=a.B", AUTO));
        assertEquals(new RecordEncoding(RecordEncoding.UNSUPPORTED, ""), encoding("", AUTO));
    }
}
