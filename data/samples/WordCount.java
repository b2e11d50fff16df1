import java.io.BufferedReader;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

public class WordCount {
    private int total;

    public Map<String, Integer> count(BufferedReader in) throws IOException {
        Map<String, Integer> counts = new HashMap<>();
        String line;
        while ((line = in.readLine()) != null) {
            for (String word : line.split("\\s+")) {
                if (word.isEmpty()) continue;
                counts.merge(word, 1, Integer::sum);
                total++;
            }
        }
        return counts;
    }
}
