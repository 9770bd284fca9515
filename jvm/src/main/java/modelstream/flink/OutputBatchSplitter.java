package modelstream.flink;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
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

    @Override
    public void flatMap(byte[] batch, Collector<Row> out) {
        ByteBuffer buffer = ByteBuffer.wrap(batch);
        while (buffer.hasRemaining()) {
            byte[] topic = new byte[buffer.getShort() & 0xffff];
            buffer.get(topic);
            int keyLength = buffer.getInt();
            byte[] key = null;
            if (keyLength >= 0) {
                key = new byte[keyLength];
                buffer.get(key);
            }
            byte[] value = new byte[buffer.getInt()];
            buffer.get(value);
            out.collect(Row.of(new String(topic, StandardCharsets.UTF_8), key, value));
        }
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return Types.ROW(
                Types.STRING,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    }
}
