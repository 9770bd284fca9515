package modelstream.flink;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * Groups data records by data type into micro-batches before they cross into the Python worker.
 *
 * <p>In: Row(partition INT, offset BIGINT, value BYTES) from {@link RecordWithOffsetDeserializationSchema}.
 * Out: Row(dataType STRING, batch BYTES), where batch holds, per record, partition (int32), offset
 * (int64), value length (int32) and the value, big-endian; modelstream/frames.py reads it. The data type
 * is the record's string field {@code dataTypeField}; "" when absent or unreadable (the Python side then
 * dead-letters those records with the reason).
 *
 * <p>A batch goes out when it holds {@code maxRecords} records or its first record has waited
 * {@code maxDelayMs}. Nothing is kept in state: every batch is emitted before a checkpoint barrier
 * passes this operator, so a checkpoint never covers a record that has not gone downstream
 * (at-least-once through the source offsets).
 */
public final class MicroBatchOperator extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final int dataTypeField;
    private final int maxRecords;
    private final long maxDelayMs;
    private transient Map<String, Batch> batches;

    private static final class Batch {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream(16 * 1024);
        final DataOutputStream out = new DataOutputStream(bytes);
        int count;
        long deadline;
    }

    public MicroBatchOperator(int dataTypeField, int maxRecords, long maxDelayMs) {
        this.dataTypeField = dataTypeField;
        this.maxRecords = Math.max(1, maxRecords);
        this.maxDelayMs = Math.max(0, maxDelayMs);
    }

    @Override
    public void open() throws Exception {
        super.open();
        batches = new HashMap<>();
    }

    @Override
    public void processElement(StreamRecord<Row> element) throws IOException {
        Row row = element.getValue();
        byte[] value = (byte[]) row.getField(2);
        String dataType = ProtobufWire.stringField(value, dataTypeField);
        Batch batch = batches.get(dataType);
        if (batch == null) {
            batch = new Batch();
            batches.put(dataType, batch);
        }
        batch.out.writeInt((Integer) row.getField(0));
        batch.out.writeLong((Long) row.getField(1));
        batch.out.writeInt(value.length);
        batch.out.write(value);
        batch.count++;
        if (batch.count >= maxRecords) {
            emit(dataType, batch);
        } else if (batch.count == 1) {
            long now = getProcessingTimeService().getCurrentProcessingTime();
            batch.deadline = now + maxDelayMs;
            getProcessingTimeService().registerTimer(batch.deadline, this::onDeadline);
        }
    }

    private void onDeadline(long time) {
        for (Map.Entry<String, Batch> entry : new ArrayList<>(batches.entrySet())) {
            Batch batch = entry.getValue();
            if (batch.count > 0 && batch.deadline <= time) {
                emit(entry.getKey(), batch);
            }
        }
    }

    private void emit(String dataType, Batch batch) {
        output.collect(new StreamRecord<>(Row.of(dataType, batch.bytes.toByteArray())));
        batch.bytes.reset();
        batch.count = 0;
    }

    private void emitAll() {
        for (Map.Entry<String, Batch> entry : batches.entrySet()) {
            if (entry.getValue().count > 0) {
                emit(entry.getKey(), entry.getValue());
            }
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        emitAll();
    }

    @Override
    public void endInput() {
        emitAll();
    }
}
