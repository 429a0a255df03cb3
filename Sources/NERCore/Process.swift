import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who holds a claim: host, pid and the process's start time (so a recycled pid is not mistaken
/// for the owner).
public struct ProcessIdentity: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var pid: Int32
    public var startTicks: UInt64

    public init(host: String, pid: Int32, startTicks: UInt64) {
        self.host = host
        self.pid = pid
        self.startTicks = startTicks
    }

    public static let current = ProcessIdentity(host: hostName(), pid: getpid(), startTicks: processStartTicks(getpid()) ?? 0)

    public var description: String { "\(host):\(pid)" }

    /// True when this identity names a live process on this host. Owners on other hosts can't be
    /// checked; their claims expire by lease instead.
    public var isAliveHere: Bool? {
        guard host == ProcessIdentity.current.host else { return nil }
        guard let ticks = processStartTicks(pid) else { return false }
        return startTicks == 0 || ticks == startTicks
    }
}

public func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    gethostname(&buf, buf.count)
    let name = String(cString: buf)
    return name.isEmpty ? "localhost" : name
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot; nil if gone.
public func processStartTicks(_ pid: Int32) -> UInt64? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
          let s = String(data: data, encoding: .utf8),
          let close = s.lastIndex(of: ")") else { return nil }
    let fields = s[s.index(after: close)...].split(separator: " ")
    // After the command name come state (field 3) ... starttime is field 22, i.e. index 19 here.
    guard fields.count > 19, let ticks = UInt64(fields[19]) else { return nil }
    if fields[0] == "Z" { return nil }
    return ticks
}

/// The user name for audit fields: `$USER`, else the password entry of the effective uid, else `uidN`.
public func currentUser() -> String {
    if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
    if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return "uid\(geteuid())"
}
