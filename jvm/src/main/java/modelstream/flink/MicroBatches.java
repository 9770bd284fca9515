package modelstream.flink;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.types.Row;

/**
 * Open micro-batches per data type, without Flink: what {@link MicroBatchOperator} holds between a
 * record's arrival and its batch going downstream.
 *
 * <p>A batch is a Row(dataType STRING, batch BYTES); batch holds its records' frames ({@link RecordFrame})
 * back to back, in arrival order (read by modelstream/frames.py).
 */
final class MicroBatches {
    private final int maxRecords;
    private final long maxDelayMs;
    private final Map<String, Batch> open = new HashMap<>();

    private static final class Batch {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream(16 * 1024);
        int count;
        long deadline;
    }

    MicroBatches(int maxRecords, long maxDelayMs) {
        this.maxRecords = Math.max(1, maxRecords);
        this.maxDelayMs = Math.max(0, maxDelayMs);
    }

    /** The result of {@link #add}: a full batch to send now, or the deadline of a batch just opened. */
    static final class Added {
        final Row full;
        final long openedUntil;

        private Added(Row full, long openedUntil) {
            this.full = full;
            this.openedUntil = openedUntil;
        }
    }

    private static final Added NOTHING = new Added(null, -1);

    /** Adds a framed record; returns its batch if now full, or the deadline if it opened the batch. */
    Added add(String dataType, byte[] framedRecord, long nowMs) {
        Batch batch = open.get(dataType);
        if (batch == null) {
            batch = new Batch();
            open.put(dataType, batch);
        }
        batch.bytes.writeBytes(framedRecord);
        batch.count++;
        if (batch.count >= maxRecords) {
            return new Added(take(dataType, batch), -1);
        }
        if (batch.count == 1) {
            batch.deadline = nowMs + maxDelayMs;
            return new Added(null, batch.deadline);
        }
        return NOTHING;
    }

    /** Takes the batches whose deadline is at or before {@code nowMs}. */
    List<Row> due(long nowMs) {
        List<Row> ready = new ArrayList<>();
        for (Map.Entry<String, Batch> entry : open.entrySet()) {
            Batch batch = entry.getValue();
            if (batch.count > 0 && batch.deadline <= nowMs) {
                ready.add(take(entry.getKey(), batch));
            }
        }
        return ready;
    }

    /** Takes every open batch. */
    List<Row> all() {
        return due(Long.MAX_VALUE);
    }

    private static Row take(String dataType, Batch batch) {
        Row row = Row.of(dataType, batch.bytes.toByteArray());
        batch.bytes.reset();
        batch.count = 0;
        return row;
    }
}
