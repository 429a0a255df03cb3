/// The toolchain version, printed by `--version` and written into manifests and model files.
public enum Toolchain {
    public static let version = "0.1.0"
}
