package modelstream.flink;

import java.nio.charset.StandardCharsets;

/**
 * Reads one string field out of serialized protobuf bytes without the generated classes, and finds the
 * message inside Confluent Schema Registry framing.
 */
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

        Cursor(byte[] bytes, int pos) {
            this.bytes = bytes;
            this.pos = pos;
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
        return stringField(message, 0, field);
    }

    /** As {@link #stringField(byte[], int)}, for the message that starts at byte {@code from}. */
    static String stringField(byte[] message, int from, int field) {
        String found = "";
        Cursor in = new Cursor(message, from);
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

    /**
     * Where the message starts in Confluent Schema Registry framing: magic byte 0, a 4-byte schema id,
     * then the message indexes, a zigzag varint count and as many zigzag varints (a count of 0 alone
     * means [0]). -1 when {@code framed} does not begin with that framing.
     */
    static int confluentBody(byte[] framed) {
        if (framed.length < 6 || framed[0] != 0) return -1;
        Cursor in = new Cursor(framed, 5);
        try {
            long count = zigzag(in.varint());
            if (count < 0 || count > framed.length) return -1;
            for (long i = 0; i < count; i++) {
                in.varint();
            }
        } catch (ArrayIndexOutOfBoundsException | Malformed e) {
            return -1;
        }
        return in.pos <= framed.length ? in.pos : -1;
    }

    private static long zigzag(long encoded) {
        return (encoded >>> 1) ^ -(encoded & 1);
    }
}
