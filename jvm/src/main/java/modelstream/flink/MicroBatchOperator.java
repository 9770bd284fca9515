package modelstream.flink;

import java.util.List;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * Groups data records by data type into micro-batches ({@link MicroBatches}) before they cross into the
 * Python worker.
 *
 * <p>In: Row(dataType STRING, framedRecord BYTES) from {@link DataRecordDeserializationSchema}, which
 * found the data type. Out: Row(dataType STRING, batch BYTES), the batch its records' frames back to back.
 *
 * <p>A batch goes out when it holds {@code maxRecords} records or its first record has waited its delay:
 * {@code maxDelayMs}, longer (up to {@code busyDelayMs}) while its data type's records arrive faster than
 * {@code busyRate} per second ({@link MicroBatches}). Nothing is kept in state: every open batch is
 * emitted before a checkpoint barrier passes this operator, so a checkpoint never covers a record that
 * has not gone downstream (at-least-once through the source offsets).
 *
 * <p>Metrics: {@code batch_delay_ms} (the delay given to the batch opened last), {@code batches} and
 * {@code batched_records} (sent so far: their ratio is the mean batch size).
 */
public final class MicroBatchOperator extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final int maxRecords;
    private final long maxDelayMs;
    private final long busyDelayMs;
    private final double busyRate;
    private transient MicroBatches batches;

    public MicroBatchOperator(int maxRecords, long maxDelayMs, long busyDelayMs, double busyRate) {
        this.maxRecords = maxRecords;
        this.maxDelayMs = maxDelayMs;
        this.busyDelayMs = busyDelayMs;
        this.busyRate = busyRate;
    }

    @Override
    public void open() throws Exception {
        super.open();
        batches = new MicroBatches(maxRecords, maxDelayMs, busyDelayMs, busyRate);
        MetricGroup metrics = getMetricGroup();
        metrics.gauge("batch_delay_ms", (Gauge<Long>) batches::lastDelayMs);
        metrics.gauge("batches", (Gauge<Long>) batches::batchesOut);
        metrics.gauge("batched_records", (Gauge<Long>) batches::recordsOut);
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        Row row = element.getValue();
        MicroBatches.Added added = batches.add((String) row.getField(0), (byte[]) row.getField(1), now());
        if (added.full != null) {
            output.collect(new StreamRecord<>(added.full));
        } else if (added.openedUntil >= 0) {
            getProcessingTimeService().registerTimer(added.openedUntil, this::emitDue);
        }
    }

    private long now() {
        return getProcessingTimeService().getCurrentProcessingTime();
    }

    private void emitDue(long time) {
        // the time now, not the timer's: a late timer's batch holds records of up to now
        emit(batches.due(Math.max(time, now())));
    }

    private void emit(List<Row> ready) {
        for (Row batch : ready) {
            output.collect(new StreamRecord<>(batch));
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        emit(batches.all(now()));
    }

    @Override
    public void endInput() {
        emit(batches.all(now()));
    }
}
