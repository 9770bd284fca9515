package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class MicroBatchesTest {
    private static byte[] frame(int partition, long offset, byte[] value) {
        return RecordFrame.of(RecordEncoding.WINE_RECORD, 0, partition, offset, 0, null, value);
    }

    @Test
    void aFullBatchGoesAtOnceAndHoldsItsRecordsInOrder() {
        MicroBatches batches = new MicroBatches(2, 5);
        MicroBatches.Added first = batches.add("wine", frame(0, 7, new byte[] {1}), 100);
        assertNull(first.full);
        assertEquals(105, first.openedUntil);
        MicroBatches.Added second = batches.add("wine", frame(1, 8, new byte[] {2, 3}), 101);
        assertEquals("wine", second.full.getField(0));
        byte[] expected = TestBytes.concat(frame(0, 7, new byte[] {1}), frame(1, 8, new byte[] {2, 3}));
        assertArrayEquals(expected, (byte[]) second.full.getField(1));
        assertEquals(List.of(), batches.all());
    }

    @Test
    void dataTypesBatchApartAndGoWhenTheirDeadlinePasses() {
        MicroBatches batches = new MicroBatches(100, 5);
        batches.add("a", frame(0, 1, new byte[0]), 100);
        batches.add("b", frame(0, 2, new byte[0]), 103);
        batches.add("a", frame(0, 3, new byte[0]), 104);
        assertEquals(List.of(), batches.due(104));
        List<Row> due = batches.due(105);
        assertEquals(1, due.size());
        assertEquals("a", due.get(0).getField(0));
        assertEquals(2 * RecordFrame.FIXED, ((byte[]) due.get(0).getField(1)).length);
        // "a" reopens with a new deadline: the old timer at 105 must not send it early
        assertEquals(111, batches.add("a", frame(0, 4, new byte[0]), 106).openedUntil);
        assertEquals(List.of("b"), batches.due(108).stream().map(r -> r.getField(0)).toList());
        assertEquals(List.of("a"), batches.all().stream().map(r -> r.getField(0)).toList());
        assertEquals(List.of(), batches.all());
    }

    @Test
    void aBatchOfOneGoesAtOnce() {
        MicroBatches.Added added = new MicroBatches(1, 5).add("wine", frame(0, 0, new byte[] {9}), 0);
        assertArrayEquals(frame(0, 0, new byte[] {9}), (byte[]) added.full.getField(1));
    }
}
