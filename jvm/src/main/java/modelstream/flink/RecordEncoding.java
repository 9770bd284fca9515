package modelstream.flink;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * How one data record is encoded: an encoding code (modelstream/topics.py {@code Encoding}) and its meta
 * text, the protobuf message name of a user-schema record or the header of an unsupported one.
 *
 * <p>{@link #of} decides it per record: the record's {@code content-type} header ({@link ContentType}) if
 * it has one, else its topic's encoding, detected from the first bytes for an AUTO topic.
 */
final class RecordEncoding implements Serializable {
    private static final long serialVersionUID = 1L;

    static final int WINE = 0;
    static final int JSON = 1;
    static final int OIP = 2;
    static final int PROTOBUF = 3;
    static final int UNSUPPORTED = 4;
    /** Feedback (a JSON object with dataType, record_id and label or value), only from the feedback topic. */
    static final int FEEDBACK = 5;
    static final int AUTO = 255;

    static final String OIP_MESSAGE = "inference.ModelInferRequest";
    static final String WINE_MESSAGE = "modelstream.WineRecord";

    static final RecordEncoding WINE_RECORD = new RecordEncoding(WINE, "");
    static final RecordEncoding JSON_RECORD = new RecordEncoding(JSON, "");
    static final RecordEncoding OIP_RECORD = new RecordEncoding(OIP, "");
    static final RecordEncoding FEEDBACK_RECORD = new RecordEncoding(FEEDBACK, "");

    private static final int MAX_META = 0xffff;

    final int code;
    final String meta;
    /** meta as UTF-8, cut to the 65535 bytes its uint16 length can count. */
    final byte[] metaBytes;

    RecordEncoding(int code, String meta) {
        this.code = code;
        this.meta = meta;
        this.metaBytes = utf8Prefix(meta, MAX_META);
    }

    /**
     * The encoding of a record with this {@code content-type} header (null: none) on {@code topic}; every
     * message of the feedback topic is feedback, whatever its header says.
     */
    static RecordEncoding of(String contentType, DataTopics.Topic topic, byte[] value) {
        if (topic.encoding == FEEDBACK) {
            return FEEDBACK_RECORD;
        }
        if (contentType != null) {
            return ContentType.parse(contentType).encoding(topic);
        }
        if (topic.encoding != AUTO) {
            return topic.declared;
        }
        return detect(topic, value);
    }

    /** AUTO: a JSON object by its first non-blank byte, Confluent-framed protobuf by byte 0, else wine. */
    static RecordEncoding detect(DataTopics.Topic topic, byte[] value) {
        if (value.length > 0 && value[0] == 0) {
            return topic.autoProtobuf;
        }
        for (byte b : value) {
            if (b == '{') return JSON_RECORD;
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r') break;
        }
        return WINE_RECORD;
    }

    private static byte[] utf8Prefix(String text, int max) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= max) return bytes;
        int end = max;
        while (end > 0 && (bytes[end] & 0xc0) == 0x80) end--; // not into a character
        return Arrays.copyOf(bytes, end);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof RecordEncoding
                && ((RecordEncoding) other).code == code
                && ((RecordEncoding) other).meta.equals(meta);
    }

    @Override
    public int hashCode() {
        return 31 * code + meta.hashCode();
    }

    @Override
    public String toString() {
        return code + (meta.isEmpty() ? "" : ":" + meta);
    }
}
