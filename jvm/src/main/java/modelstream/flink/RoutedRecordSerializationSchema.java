package modelstream.flink;

import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.types.Row;

/**
 * Writes a Row(topic STRING, key BYTES, value BYTES) to the topic it names, with the given key.
 *
 * <p>PyFlink's built-in serialization schemas cannot set a Kafka key from a Python element, and the
 * compacted stats topic needs one; with this schema one KafkaSink carries scores, stats and dead
 * letters, each record routed by the Python operator that produced it.
 */
public final class RoutedRecordSerializationSchema implements KafkaRecordSerializationSchema<Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public ProducerRecord<byte[], byte[]> serialize(Row element, KafkaSinkContext context, Long timestamp) {
        String topic = (String) element.getField(0);
        byte[] key = (byte[]) element.getField(1);
        byte[] value = (byte[]) element.getField(2);
        return new ProducerRecord<>(topic, null, timestamp, key, value);
    }
}
