package modelstream.flink;

import java.nio.ByteBuffer;

/**
 * One data record as it travels in a micro-batch to the Python worker (read by modelstream/frames.py),
 * big-endian:
 *
 * <pre>
 * encoding  uint8   RecordEncoding code (never AUTO)
 * topic     uint16  index of the record's topic in DataTopics
 * partition int32
 * offset    int64
 * timestamp int64   the Kafka record's timestamp (ms)
 * key       int32 length (-1: null key) + bytes
 * meta      uint16 length + UTF-8 bytes
 * value     int32 length + bytes (a null value: 0 bytes)
 * </pre>
 */
final class RecordFrame {
    /** The bytes of a frame besides its key, meta and value. */
    static final int FIXED = 1 + 2 + 4 + 8 + 8 + 4 + 2 + 4;

    private RecordFrame() {}

    static byte[] of(RecordEncoding encoding, int topic, int partition, long offset, long timestamp,
            byte[] key, byte[] value) {
        byte[] meta = encoding.metaBytes;
        int keyLength = key == null ? 0 : key.length;
        int valueLength = value == null ? 0 : value.length;
        ByteBuffer frame = ByteBuffer.allocate(FIXED + keyLength + meta.length + valueLength);
        frame.put((byte) encoding.code)
                .putShort((short) topic)
                .putInt(partition)
                .putLong(offset)
                .putLong(timestamp);
        if (key == null) {
            frame.putInt(-1);
        } else {
            frame.putInt(key.length).put(key);
        }
        frame.putShort((short) meta.length).put(meta);
        frame.putInt(valueLength);
        if (value != null) {
            frame.put(value);
        }
        return frame.array();
    }
}
