// A JVM program of ordinary objects for SECONDS seconds: `leak` keeps
// every batch of records in a static list (about 20 MiB/s the collector can
// never free); `steady` makes the same batches and lets them go.
// Usage: java Leak.java leak|steady SECONDS   (the JDK's source launcher)
import java.util.ArrayList;
import java.util.List;

public class Leak {
    static final List<List<String>> KEPT = new ArrayList<>();

    public static void main(String[] args) throws InterruptedException {
        boolean leak = args[0].equals("leak");
        long deadline = System.nanoTime() + (long) (Double.parseDouble(args[1]) * 1e9);
        long n = 0;
        while (System.nanoTime() < deadline) {
            List<String> batch = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                batch.add("record-" + (n++) + "x".repeat(150));
            }
            if (leak) {
                KEPT.add(batch);
            }
            Thread.sleep(10);
        }
    }
}
