package modelstream.flink;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.flink.types.Row;

/**
 * Open micro-batches per data type, without Flink: what {@link MicroBatchOperator} holds between a
 * record's arrival and its batch going downstream.
 *
 * <p>A batch is a Row(dataType STRING, batch BYTES); batch holds its records' frames ({@link RecordFrame})
 * back to back, in arrival order (read by modelstream/frames.py).
 *
 * <p>How long a batch stays open grows with its data type's arrival rate: up to {@code busyRate} records
 * per second a batch waits at most {@code maxDelayMs} (the latency bound at low rates), above it in
 * proportion to the rate, up to {@code busyDelayMs}. Each micro-batch costs the Python worker a fixed
 * amount (a round trip, a bundle to finish); at a high rate, waiting a little longer makes the batches
 * large enough to spread that cost, while at a low rate nothing waits longer than it did.
 */
final class MicroBatches {
    private final int maxRecords;
    private final long maxDelayMs;
    private final long busyDelayMs;
    private final double busyRatePerMs;
    private final Map<String, Batch> open = new HashMap<>();
    // read by the metrics reporter's thread
    private volatile long lastDelayMs;
    private volatile long batchesOut;
    private volatile long recordsOut;

    private static final class Batch {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream(16 * 1024);
        int count;
        long deadline;
        /** When the previous batch went out (or the first record came): the rate's time base. */
        long since = -1;
        /** Records per ms, smoothed over the batches that went out. */
        double rate;
    }

    MicroBatches(int maxRecords, long maxDelayMs) {
        this(maxRecords, maxDelayMs, maxDelayMs, Double.POSITIVE_INFINITY);
    }

    /**
     * @param busyRate records per second of one data type above which its batches wait longer than
     *     {@code maxDelayMs}, in proportion to the rate, up to {@code busyDelayMs}
     */
    MicroBatches(int maxRecords, long maxDelayMs, long busyDelayMs, double busyRate) {
        this.maxRecords = Math.max(1, maxRecords);
        this.maxDelayMs = Math.max(0, maxDelayMs);
        this.busyDelayMs = Math.max(this.maxDelayMs, busyDelayMs);
        this.busyRatePerMs = busyRate > 0 ? busyRate / 1000.0 : Double.POSITIVE_INFINITY;
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
            return new Added(take(dataType, batch, nowMs), -1);
        }
        if (batch.count == 1) {
            if (batch.since < 0 || nowMs - batch.since > busyDelayMs) {
                // idle for longer than any batch waits: the rate of before says nothing of now
                batch.since = nowMs;
                batch.rate = 0;
            }
            lastDelayMs = delayMs(batch.rate);
            batch.deadline = nowMs + lastDelayMs;
            return new Added(null, batch.deadline);
        }
        return NOTHING;
    }

    /** How long a batch opened at {@code rate} records per ms waits to fill. */
    long delayMs(double rate) {
        if (rate <= busyRatePerMs) {
            return maxDelayMs;
        }
        return Math.min(busyDelayMs, Math.round(Math.max(1, maxDelayMs) * rate / busyRatePerMs));
    }

    /** The delay given to the batch opened last, ms. */
    long lastDelayMs() {
        return lastDelayMs;
    }

    /** Data types with a batch open or a rate still remembered. */
    int dataTypes() {
        return open.size();
    }

    /** Batches sent so far. */
    long batchesOut() {
        return batchesOut;
    }

    /** Records sent so far. */
    long recordsOut() {
        return recordsOut;
    }

    /** Takes the batches whose deadline is at or before {@code nowMs}. */
    List<Row> due(long nowMs) {
        return takeWhere(nowMs, nowMs);
    }

    /** Takes every open batch (before a checkpoint barrier, at the end of input). */
    List<Row> all(long nowMs) {
        return takeWhere(Long.MAX_VALUE, nowMs);
    }

    /** Takes the batches due by {@code dueBy}; forgets data types idle for longer than any batch waits. */
    private List<Row> takeWhere(long dueBy, long nowMs) {
        List<Row> ready = new ArrayList<>();
        Iterator<Map.Entry<String, Batch>> entries = open.entrySet().iterator();
        while (entries.hasNext()) {
            Map.Entry<String, Batch> entry = entries.next();
            Batch batch = entry.getValue();
            if (batch.count > 0 && batch.deadline <= dueBy) {
                ready.add(take(entry.getKey(), batch, nowMs));
            } else if (batch.count == 0 && nowMs - batch.since > busyDelayMs) {
                entries.remove(); // its rate would be reset anyway; its buffer is freed
            }
        }
        return ready;
    }

    private Row take(String dataType, Batch batch, long nowMs) {
        batchesOut++;
        recordsOut += batch.count;
        // records since the previous batch went out, idle time included: a lull brings the rate down
        double measured = batch.count / (double) Math.max(1, nowMs - batch.since);
        batch.rate = (batch.rate + measured) / 2;
        batch.since = nowMs;
        Row row = Row.of(dataType, batch.bytes.toByteArray());
        batch.bytes.reset();
        batch.count = 0;
        return row;
    }
}
