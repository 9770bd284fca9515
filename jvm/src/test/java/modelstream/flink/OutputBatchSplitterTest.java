package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.junit.jupiter.api.Test;

class OutputBatchSplitterTest {
    private static final class ListCollector implements Collector<Row> {
        final List<Row> rows = new ArrayList<>();

        @Override
        public void collect(Row row) {
            rows.add(row);
        }

        @Override
        public void close() {}
    }

    private static void put(ByteBuffer buffer, String topic, byte[] key, byte[] value) {
        byte[] name = topic.getBytes(StandardCharsets.UTF_8);
        buffer.putShort((short) name.length).put(name);
        if (key == null) {
            buffer.putInt(-1);
        } else {
            buffer.putInt(key.length).put(key);
        }
        buffer.putInt(value.length).put(value);
    }

    @Test
    void splitsEachOutputWithItsTopicAndKey() {
        ByteBuffer buffer = ByteBuffer.allocate(1 << 17);
        put(buffer, "scores", null, new byte[] {1, 2});
        put(buffer, "model-stats", "wine".getBytes(StandardCharsets.UTF_8), new byte[0]);
        put(buffer, "dead-letters", new byte[0], new byte[70_000]);
        byte[] batch = java.util.Arrays.copyOf(buffer.array(), buffer.position());
        ListCollector out = new ListCollector();
        new OutputBatchSplitter().flatMap(batch, out);
        assertEquals(3, out.rows.size());
        assertEquals("scores", out.rows.get(0).getField(0));
        assertNull(out.rows.get(0).getField(1));
        assertArrayEquals(new byte[] {1, 2}, (byte[]) out.rows.get(0).getField(2));
        assertArrayEquals("wine".getBytes(StandardCharsets.UTF_8), (byte[]) out.rows.get(1).getField(1));
        assertEquals(0, ((byte[]) out.rows.get(2).getField(1)).length);
        assertEquals(70_000, ((byte[]) out.rows.get(2).getField(2)).length);
    }

    @Test
    void aTopicIsTheSameStringInEveryBatch() {
        ByteBuffer buffer = ByteBuffer.allocate(256);
        put(buffer, "scores", null, new byte[] {1});
        put(buffer, "shadow-scores", null, new byte[] {2});
        put(buffer, "scores", null, new byte[] {3});
        byte[] batch = java.util.Arrays.copyOf(buffer.array(), buffer.position());
        OutputBatchSplitter splitter = new OutputBatchSplitter();
        ListCollector out = new ListCollector();
        splitter.flatMap(batch, out);
        splitter.flatMap(batch, out);
        assertEquals(6, out.rows.size());
        assertEquals("shadow-scores", out.rows.get(1).getField(0));
        assertSame(out.rows.get(0).getField(0), out.rows.get(2).getField(0));
        assertSame(out.rows.get(0).getField(0), out.rows.get(5).getField(0));
    }

    @Test
    void aCutBatchFailsLoudly() {
        ByteBuffer buffer = ByteBuffer.allocate(64);
        put(buffer, "scores", null, new byte[] {1, 2});
        byte[] cut = java.util.Arrays.copyOf(buffer.array(), buffer.position() - 1);
        assertThrows(BufferUnderflowException.class, () -> new OutputBatchSplitter().flatMap(cut, new ListCollector()));
    }
}
