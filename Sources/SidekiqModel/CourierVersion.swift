// The version courier reports: on --version, in /v1 requests and in the
// process hash the Web UI shows.

/// Courier's own version.
public enum CourierVersion {
    /// Courier's release version; `courier --version` prints it.
    public static let version = "0.1.0"
    /// What the `version` field of the process info says (the Web UI shows it).
    public static let sidekiqVersionString = "courier \(version)"
}
