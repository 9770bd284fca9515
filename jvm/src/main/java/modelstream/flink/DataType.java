package modelstream.flink;

/**
 * The data type of a data record, the key its model is chosen by: the {@code data-type} header if not
 * empty, else the record's own field for its encoding, else its topic's default data type.
 *
 * <p>Own fields: a WineRecord's string field 12 ({@code dataType}), a JSON object's {@code dataType}
 * member (also feedback's), an Open Inference Protocol request's string field 1 ({@code model_name}), a user-schema
 * record's string field of the topic's {@code data-type-field} (after any Confluent framing).
 */
final class DataType {
    static final int WINE_FIELD = 12;
    static final int OIP_FIELD = 1;

    private DataType() {}

    static String of(String header, RecordEncoding encoding, DataTopics.Topic topic, byte[] value) {
        if (header != null && !header.isEmpty()) {
            return header;
        }
        String own = ownField(encoding.code, topic, value);
        return own.isEmpty() ? topic.defaultDataType : own;
    }

    /** The record's own data type; "" when it has none or cannot be read. */
    static String ownField(int encoding, DataTopics.Topic topic, byte[] value) {
        switch (encoding) {
            case RecordEncoding.WINE:
                return ProtobufWire.stringField(value, WINE_FIELD);
            case RecordEncoding.JSON:
            case RecordEncoding.FEEDBACK:
                return JsonDataType.of(value);
            case RecordEncoding.OIP:
                return ProtobufWire.stringField(value, OIP_FIELD);
            case RecordEncoding.PROTOBUF:
                if (topic.dataTypeField <= 0) return "";
                int body = value.length > 0 && value[0] == 0 ? ProtobufWire.confluentBody(value) : 0;
                return body < 0 ? "" : ProtobufWire.stringField(value, body, topic.dataTypeField);
            default:
                return "";
        }
    }
}
