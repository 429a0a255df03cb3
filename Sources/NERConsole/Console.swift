import Foundation
import Logging
import NERCore
import NERRegistry
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// Starting the console (docs/console.md): the address check, the first admin, the server, and
/// the poller that feeds the event streams.
public enum Console {
    /// The server side of TLS from PEM files; a file that is missing is 66, one that does not
    /// parse (or a key that is not the certificate's) is 65.
    static func tlsContext(certificate: String, key: String) throws -> NIOSSLContext {
        for (flag, path) in [("--tls-cert", certificate), ("--tls-key", key)] where !fileExists(path) {
            throw ToolError.noInput("\(flag) \(path): no such file")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            if chain.isEmpty { throw ToolError.data("\(certificate): no certificate in the file") }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            return try NIOSSLContext(configuration: configuration)
        } catch let e as ToolError {
            throw e
        } catch {
            throw ToolError.data("--tls-cert \(certificate) / --tls-key \(key): \(error)")
        }
    }

    /// Addresses that only this machine can reach.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Serves until SIGTERM or SIGINT, then returns. `ready` is told the bound port.
    /// `tls` is a PEM certificate chain and key: the console then speaks HTTPS only.
    public static func serve(_ options: ConsoleOptions, host: String, port: Int, insecureHTTP: Bool,
                             tls: (certificate: String, key: String)? = nil,
                             log: Logger, ready: (Int) -> Void = { _ in }) throws {
        if !isLoopback(host) && !insecureHTTP && tls == nil {
            throw ToolError.usage("--host \(clipped(host)) would send sign-in tokens and cookies in clear text over the "
                + "network; give --tls-cert and --tls-key, or put the console behind a TLS proxy (docs/console.md) "
                + "and give --insecure-http")
        }
        let context = try tls.map { try tlsContext(certificate: $0.certificate, key: $0.key) }
        var options = options
        if context != nil { options.secureCookies = true }
        let app = try ConsoleApp(options: options, log: log)
        let server = ConsoleHTTPServer(app: app)
        let bound: Int
        do {
            bound = try server.start(host: host, port: port, tls: context)
        } catch {
            server.stop()
            throw ToolError.unavailable("cannot listen on \(host):\(port): \(error)")
        }
        let shown = host.contains(":") ? "[\(host)]" : host
        let base = "\(context == nil ? "http" : "https")://\(shown):\(bound)"
        log.info("listening on \(base) (home \(options.home.root))")
        if let first = try UserAdmin.firstAdmin(app.registry) {
            // As notebook servers do: the first sign-in link goes to the terminal that started it.
            printError("ner-console", "no users yet: sign in as \(first.name) with this one-time link:", label: nil)
            FileHandle.standardError.write(Data("    \(UserAdmin.signInURL(base: base, token: first.token))\n".utf8))
        }
        ready(bound)

        let stop = DispatchSemaphore(value: 0)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let signalSources = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stop.signal() }
            s.resume()
            return s
        }
        // Cancelled only on the way out: a source released early would drop the signal.
        defer { for s in signalSources { s.cancel() } }
        let poller = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "ner-console.poll"))
        poller.schedule(deadline: .now() + 1, repeating: 1.0, leeway: .milliseconds(100))
        poller.setEventHandler { app.poll() }
        poller.resume()
        stop.wait()
        poller.cancel()
        log.info("stopping")
        server.stop()
    }
}

/// `ner-console: MESSAGE` on stderr without the `error:` of a failure.
func printError(_ tool: String, _ message: String, label: String?) {
    FileHandle.standardError.write(Data("\(tool): \(label.map { $0 + ": " } ?? "")\(message)\n".utf8))
}
