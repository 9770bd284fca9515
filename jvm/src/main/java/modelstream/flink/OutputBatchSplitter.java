package modelstream.flink;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Splits a batch of outputs from the Python worker into Row(topic STRING, key BYTES, value BYTES), the
 * rows {@link RoutedRecordSerializationSchema} writes.
 *
 * <p>The batch holds, per output, big-endian: topic length (uint16) and UTF-8 topic, key length (int32,
 * -1 for no key) and key, value length (int32) and value; modelstream/frames.py writes it. One element
 * per batch, not per output, is what keeps the Python bridge off the per-record path.
 */
public final class OutputBatchSplitter implements FlatMapFunction<byte[], Row>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;

    /** The topics seen so far, UTF-8 and as Strings: a batch names a handful, one per output. */
    private transient byte[][] topicBytes;

    private transient String[] topicNames;

    @Override
    public void flatMap(byte[] batch, Collector<Row> out) {
        ByteBuffer buffer = ByteBuffer.wrap(batch);
        while (buffer.hasRemaining()) {
            int topicLength = buffer.getShort() & 0xffff;
            String topic = topic(batch, buffer.position(), topicLength);
            buffer.position(buffer.position() + topicLength);
            int keyLength = buffer.getInt();
            byte[] key = null;
            if (keyLength >= 0) {
                key = new byte[keyLength];
                buffer.get(key);
            }
            byte[] value = new byte[buffer.getInt()];
            buffer.get(value);
            out.collect(Row.of(topic, key, value));
        }
    }

    /**
     * The topic named by {@code length} bytes at {@code from}: the same String instance each time, so the
     * producer's per-record topic lookups hash it once.
     */
    private String topic(byte[] batch, int from, int length) {
        if (topicBytes == null) {
            topicBytes = new byte[0][];
            topicNames = new String[0];
        }
        for (int i = 0; i < topicBytes.length; i++) {
            if (Arrays.equals(batch, from, from + length, topicBytes[i], 0, topicBytes[i].length)) {
                return topicNames[i];
            }
        }
        byte[] bytes = Arrays.copyOfRange(batch, from, from + length);
        String name = new String(bytes, StandardCharsets.UTF_8);
        topicBytes = Arrays.copyOf(topicBytes, topicBytes.length + 1);
        topicNames = Arrays.copyOf(topicNames, topicNames.length + 1);
        topicBytes[topicBytes.length - 1] = bytes;
        topicNames[topicNames.length - 1] = name;
        return name;
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return Types.ROW(
                Types.STRING,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    }
}
