package modelstream.flink;

import java.util.Locale;

/**
 * A record's {@code content-type} header: its media type and {@code messageType} parameter, and the
 * {@link RecordEncoding} they name.
 *
 * <p>The media type is the text before the first ';', trimmed and lower-cased; parameters follow as
 * {@code ;name=value} (names in any case, values trimmed and unquoted).
 */
final class ContentType {
    static final String JSON = "application/json";
    static final String PROTOBUF = "application/x-protobuf";
    static final String PROTOBUF_REGISTERED = "application/protobuf";
    private static final String MESSAGE_TYPE = "messageType";

    /** The whole header value. */
    final String header;
    /** Lower-cased, trimmed. */
    final String mediaType;
    /** The first {@code messageType} parameter's value; "" when there is none. */
    final String messageType;

    private ContentType(String header, String mediaType, String messageType) {
        this.header = header;
        this.mediaType = mediaType;
        this.messageType = messageType;
    }

    static ContentType parse(String header) {
        int semicolon = header.indexOf(';');
        String media = semicolon < 0 ? header : header.substring(0, semicolon);
        String messageType = "";
        while (semicolon >= 0 && messageType.isEmpty()) {
            int start = semicolon + 1;
            semicolon = header.indexOf(';', start);
            String parameter = semicolon < 0 ? header.substring(start) : header.substring(start, semicolon);
            int equals = parameter.indexOf('=');
            if (equals > 0 && parameter.substring(0, equals).trim().equalsIgnoreCase(MESSAGE_TYPE)) {
                messageType = unquote(parameter.substring(equals + 1).trim());
            }
        }
        return new ContentType(header, media.trim().toLowerCase(Locale.ROOT), messageType);
    }

    private static String unquote(String value) {
        if (value.length() >= 2 && value.charAt(0) == '"' && value.charAt(value.length() - 1) == '"') {
            return value.substring(1, value.length() - 1);
        }
        return value;
    }

    /** The encoding this header names for a record of {@code topic}. */
    RecordEncoding encoding(DataTopics.Topic topic) {
        if (mediaType.equals(JSON)) {
            return RecordEncoding.JSON_RECORD;
        }
        if (!mediaType.equals(PROTOBUF) && !mediaType.equals(PROTOBUF_REGISTERED)) {
            return new RecordEncoding(RecordEncoding.UNSUPPORTED, header);
        }
        switch (messageType) {
            case "":
                break;
            case RecordEncoding.OIP_MESSAGE:
                return RecordEncoding.OIP_RECORD;
            case RecordEncoding.WINE_MESSAGE:
                return RecordEncoding.WINE_RECORD;
            default:
                return new RecordEncoding(RecordEncoding.PROTOBUF, messageType);
        }
        // protobuf of no named message: the topic's own, if that is a protobuf encoding
        switch (topic.encoding) {
            case RecordEncoding.WINE:
            case RecordEncoding.OIP:
            case RecordEncoding.PROTOBUF:
                return new RecordEncoding(topic.encoding, topic.message);
            default:
                return new RecordEncoding(RecordEncoding.UNSUPPORTED, header);
        }
    }
}
