package modelstream.flink;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Builds test records: raw bytes and protobuf string fields. */
final class TestBytes {
    private TestBytes() {}

    static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) out[i] = (byte) values[i];
        return out;
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) out.writeBytes(part);
        return out.toByteArray();
    }

    static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** A protobuf string field (field numbers below 16, strings below 128 bytes). */
    static byte[] stringField(int field, String value) {
        byte[] text = utf8(value);
        return concat(bytes(field << 3 | 2, text.length), text);
    }

    /** Confluent Schema Registry framing: magic byte, schema id 1, then the given message-index bytes. */
    static byte[] confluent(byte[] indexes, byte[] message) {
        return concat(bytes(0, 0, 0, 0, 1), indexes, message);
    }
}
