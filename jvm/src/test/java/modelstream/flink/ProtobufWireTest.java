package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProtobufWireTest {
    private static final int DATA_TYPE = 12;

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) out[i] = (byte) values[i];
        return out;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) out.writeBytes(part);
        return out.toByteArray();
    }

    private static byte[] stringField(int field, String value) {
        byte[] text = value.getBytes(StandardCharsets.UTF_8);
        return concat(bytes(field << 3 | 2, text.length), text);
    }

    private static final byte[] DOUBLE_FIELD_1 = bytes(0x09, 0, 0, 0, 0, 0, 0, 0x1d, 0x40);
    private static final byte[] VARINT_FIELD_13 = bytes(0x68, 0xe8, 0x07);
    private static final byte[] FIXED32_FIELD_20 = bytes(20 << 3 | 5, 0x01, 1, 2, 3, 4); // a two-byte tag

    @Test
    void readsTheFieldAmongOthers() {
        byte[] record =
                concat(DOUBLE_FIELD_1, stringField(DATA_TYPE, "wine"), VARINT_FIELD_13, FIXED32_FIELD_20);
        assertEquals("wine", ProtobufWire.stringField(record, DATA_TYPE));
        assertEquals("", ProtobufWire.stringField(concat(DOUBLE_FIELD_1, VARINT_FIELD_13), DATA_TYPE));
        assertEquals("", ProtobufWire.stringField(new byte[0], DATA_TYPE));
    }

    @Test
    void theLastOccurrenceWinsAsInProtobuf() {
        byte[] record = concat(stringField(DATA_TYPE, "first"), stringField(DATA_TYPE, "ünïcode"));
        assertEquals("ünïcode", ProtobufWire.stringField(record, DATA_TYPE));
    }

    @Test
    void malformedBytesHaveNoDataType() {
        byte[] good = concat(stringField(DATA_TYPE, "wine"), VARINT_FIELD_13);
        for (int cut = 1; cut < good.length; cut++) {
            byte[] truncated = java.util.Arrays.copyOf(good, cut);
            if (cut != 6) { // 6 bytes: exactly the string field, a valid message
                assertEquals("", ProtobufWire.stringField(truncated, DATA_TYPE), "cut at " + cut);
            }
        }
        assertEquals("", ProtobufWire.stringField(bytes(0xff, 0xff, 0xff), DATA_TYPE));
        assertEquals("", ProtobufWire.stringField(bytes(DATA_TYPE << 3 | 2, 0x7f, 1), DATA_TYPE));
        assertEquals("", ProtobufWire.stringField(bytes(DATA_TYPE << 3 | 3), DATA_TYPE)); // a group
        assertEquals("", ProtobufWire.stringField(bytes(0x00, 0x01), DATA_TYPE)); // field number 0
    }

    @Test
    void findsTheMessageInsideConfluentFraming() {
        byte[] message = stringField(DATA_TYPE, "wine");
        byte[] head = bytes(0, 0, 0, 1, 0x2c);
        assertEquals(6, ProtobufWire.confluentBody(concat(head, bytes(0), message))); // indexes [0]
        assertEquals(9, ProtobufWire.confluentBody(concat(head, bytes(6, 2, 0, 4), message))); // [1, 0, 2]
        assertEquals(6, ProtobufWire.confluentBody(concat(head, bytes(0)))); // an empty message
        assertEquals("wine", ProtobufWire.stringField(concat(head, bytes(2, 2), message), 7, DATA_TYPE));
    }

    @Test
    void whatIsNotConfluentFramingHasNoBody() {
        assertEquals(-1, ProtobufWire.confluentBody(bytes(0, 0, 0, 1, 0x2c))); // no indexes
        assertEquals(-1, ProtobufWire.confluentBody(bytes(1, 0, 0, 1, 0x2c, 0)));
        assertEquals(-1, ProtobufWire.confluentBody(bytes(0, 0, 0, 1, 0x2c, 1))); // count -1
        assertEquals(-1, ProtobufWire.confluentBody(bytes(0, 0, 0, 1, 0x2c, 6, 2))); // 3 indexes, 1 there
        assertEquals(-1, ProtobufWire.confluentBody(bytes(0, 0, 0, 1, 0x2c, 0x80))); // a cut varint
        assertEquals(-1, ProtobufWire.confluentBody(new byte[0]));
    }
}
