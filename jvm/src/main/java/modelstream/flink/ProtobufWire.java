package modelstream.flink;

import java.nio.charset.StandardCharsets;

/** Reads one string field out of serialized protobuf bytes without the generated classes. */
final class ProtobufWire {
    private ProtobufWire() {}

    /** Bytes that are not a well-formed protobuf message. */
    private static final class Malformed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Malformed() {
            super(null, null, false, false); // no stack trace: it is an answer, not a failure
        }
    }

    /** A position in a message, read forward. */
    private static final class Cursor {
        final byte[] bytes;
        int pos;

        Cursor(byte[] bytes) {
            this.bytes = bytes;
        }

        long varint() {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                byte b = bytes[pos++];
                value |= (long) (b & 0x7f) << shift;
                if (b >= 0) return value;
            }
            throw new Malformed(); // more than ten bytes
        }
    }

    /**
     * The value of string field {@code field} (the last occurrence wins, as in protobuf), or "" when the
     * field is absent or the bytes are not a well-formed protobuf message.
     */
    static String stringField(byte[] message, int field) {
        String found = "";
        Cursor in = new Cursor(message);
        try {
            while (in.pos < message.length) {
                long tag = in.varint();
                long number = tag >>> 3;
                if (number == 0) return "";
                switch ((int) (tag & 7)) {
                    case 0: // varint
                        in.varint();
                        break;
                    case 1: // fixed64
                        in.pos += 8;
                        break;
                    case 5: // fixed32
                        in.pos += 4;
                        break;
                    case 2: { // length-delimited
                        long length = in.varint();
                        if (length < 0 || length > message.length - in.pos) return "";
                        if (number == field) {
                            found = new String(message, in.pos, (int) length, StandardCharsets.UTF_8);
                        }
                        in.pos += (int) length;
                        break;
                    }
                    default: // groups (3, 4) and invalid wire types: not a record of ours
                        return "";
                }
            }
        } catch (ArrayIndexOutOfBoundsException | Malformed e) {
            return "";
        }
        return in.pos == message.length ? found : "";
    }
}
