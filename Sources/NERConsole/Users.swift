import Crypto
import Foundation
import NERCore
import NERRegistry

/// Sign-in tokens and session ids: 32 random bytes, hex; the registry keeps only their SHA-256
/// (docs/console.md, "Users").
public enum Secrets {
    public static func random() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    public static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares every byte whatever the first difference, so timing does not reveal a secret.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = x.count ^ y.count
        for i in 0..<x.count { diff |= Int(x[i] ^ (i < y.count ? y[i] : 0)) }
        return diff == 0
    }
}

/// `ner-console user ...`: the same operations the admin page offers.
public enum UserAdmin {
    /// Adds a user; returns its one-time sign-in token.
    public static func add(_ registry: Registry, name: String, role: String, by who: String) throws -> String {
        let token = Secrets.random()
        _ = try registry.addUser(name: name, role: role, tokenHash: Secrets.hash(token), by: who)
        return token
    }

    /// A new one-time token for `name` (its sessions end).
    public static func reset(_ registry: Registry, name: String, role: String? = nil, by who: String) throws -> String {
        let token = Secrets.random()
        try registry.resetUser(name: name, tokenHash: Secrets.hash(token), role: role, by: who)
        return token
    }

    /// On a first start with no users: an `admin` user with a fresh token, or nil when users exist.
    public static func firstAdmin(_ registry: Registry) throws -> (name: String, token: String)? {
        guard try registry.users().isEmpty else { return nil }
        return ("admin", try add(registry, name: "admin", role: "admin", by: "ner-console"))
    }

    /// The sign-in URL for a token.
    public static func signInURL(base: String, token: String) -> String {
        "\(base)/signin?token=\(token)"
    }
}
