package modelstream.flink;

import java.io.IOException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

/**
 * Reads the data type of a JSON record: its top-level object's {@code dataType} member, with the
 * streaming parser of the Jackson that Flink shades (flink-dist carries it at run time).
 *
 * <p>Only the top-level members are read, each other value skipped whole, up to the first
 * {@code dataType}; the rest of the record is not looked at.
 */
final class JsonDataType {
    static final String MEMBER = "dataType";
    private static final JsonFactory FACTORY = new JsonFactory(); // thread-safe once built

    private JsonDataType() {}

    /** The first top-level {@code dataType} if it is a string; "" if absent, not a string, or malformed. */
    static String of(byte[] json) {
        try (JsonParser parser = FACTORY.createParser(json)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) return "";
            String name;
            while ((name = parser.nextFieldName()) != null) {
                JsonToken value = parser.nextToken();
                if (name.equals(MEMBER)) {
                    return value == JsonToken.VALUE_STRING ? parser.getText() : "";
                }
                parser.skipChildren();
            }
            return "";
        } catch (IOException malformed) {
            return "";
        }
    }
}
