package modelstream.flink;

import java.nio.charset.StandardCharsets;

/** Reads one string field out of serialized protobuf bytes without the generated classes. */
final class ProtobufWire {
    private ProtobufWire() {}

    /**
     * The value of string field {@code field} (the last occurrence wins, as in protobuf), or "" when the
     * field is absent or the bytes are not a well-formed protobuf message.
     */
    static String stringField(byte[] message, int field) {
        String found = "";
        int pos = 0;
        try {
            while (pos < message.length) {
                long tag = 0;
                for (int shift = 0; ; shift += 7) {
                    if (shift > 63) return "";
                    byte b = message[pos++];
                    tag |= (long) (b & 0x7f) << shift;
                    if (b >= 0) break;
                }
                int wireType = (int) (tag & 7);
                long number = tag >>> 3;
                if (number == 0) return "";
                switch (wireType) {
                    case 0: // varint
                        for (int i = 0; message[pos++] < 0; i++) {
                            if (i >= 9) return "";
                        }
                        break;
                    case 1: // fixed64
                        pos += 8;
                        break;
                    case 5: // fixed32
                        pos += 4;
                        break;
                    case 2: { // length-delimited
                        long length = 0;
                        for (int shift = 0; ; shift += 7) {
                            if (shift > 63) return "";
                            byte b = message[pos++];
                            length |= (long) (b & 0x7f) << shift;
                            if (b >= 0) break;
                        }
                        if (length < 0 || length > message.length - pos) return "";
                        if (number == field) {
                            found = new String(message, pos, (int) length, StandardCharsets.UTF_8);
                        }
                        pos += (int) length;
                        break;
                    }
                    default: // groups (3, 4) and invalid wire types: not a record of ours
                        return "";
                }
            }
        } catch (ArrayIndexOutOfBoundsException e) {
            return "";
        }
        return pos == message.length ? found : "";
    }
}
