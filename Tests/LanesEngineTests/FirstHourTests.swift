import Glibc
import LanesEngine
import LanesXDP
import Testing

/// Small things a new user meets in the first hour, tested without root.
@Suite struct FirstHourTests {
    /// `lanes info`: a key or table the driver does not report is said so, never a blank.
    @Test func rssLinesSayWhatIsNotReported() {
        let empty = Ethtool.RSS(hashFunction: 1, key: [], indirection: [])
        #expect(empty.summaryLines == ["rss           toeplitz, key not reported by the driver", "indirection   not reported by the driver"])
        let some = Ethtool.RSS(hashFunction: 1, key: [0x6d, 0x5a, 0x0a], indirection: [0, 1])
        #expect(some.summaryLines == ["rss           toeplitz, key 6d:5a:0a", "indirection   2 entries: 0 1"])
    }

    /// Every common spelling of --metrics, and the URL each serves.
    @Test(arguments: [("9100", "http://127.0.0.1:9100/metrics"), (":9100", "http://[::]:9100/metrics"),
                      ("127.0.0.1:9100", "http://127.0.0.1:9100/metrics"), ("localhost:9100", "http://127.0.0.1:9100/metrics"),
                      ("[::1]:9100", "http://[::1]:9100/metrics"), ("[fd00:198:18::2]:80", "http://[fd00:198:18::2]:80/metrics")])
    func metricsSpellings(spec: String, url: String) throws {
        #expect(try MetricsEndpoint(parsing: spec).url == url)
    }

    @Test(arguments: ["", ":", "0", ":0", "70000", "x:y", "::1:9100", "[::1]9100", "[::1]:"])
    func badMetricsSpellings(spec: String) {
        #expect(throws: LanesError.self) { try MetricsEndpoint(parsing: spec) }
    }
}
