import Foundation
import Logging
import NERCore
import NERRegistry
#if canImport(Glibc)
import Glibc
#endif

/// Starting the console (docs/console.md): the address check, the first admin, the server, and
/// the poller that feeds the event streams.
public enum Console {
    /// Addresses that only this machine can reach.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Serves until SIGTERM or SIGINT, then returns. `ready` is told the bound port.
    public static func serve(_ options: ConsoleOptions, host: String, port: Int, insecureHTTP: Bool,
                             log: Logger, ready: (Int) -> Void = { _ in }) throws {
        if !isLoopback(host) && !insecureHTTP {
            throw ToolError.usage("--host \(clipped(host)) would send sign-in tokens and cookies in clear text over the "
                + "network; put the console behind a TLS proxy (docs/console.md) and give --insecure-http to bind it anyway")
        }
        let app = try ConsoleApp(options: options, log: log)
        let server = ConsoleHTTPServer(app: app)
        let bound: Int
        do {
            bound = try server.start(host: host, port: port)
        } catch {
            server.stop()
            throw ToolError.unavailable("cannot listen on \(host):\(port): \(error)")
        }
        let shown = host.contains(":") ? "[\(host)]" : host
        let base = "http://\(shown):\(bound)"
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
