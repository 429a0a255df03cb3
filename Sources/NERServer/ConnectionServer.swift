import Foundation
import Logging
import NERCore
import NEREngine
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The server's whole request path (NIO's HTTP parser, `HTTPConnection`, the responder, the batcher
/// and the model) without a listening socket: each `exchange` is one client connection over a socket
/// pair. The fuzz target and the corpus regression test drive raw bytes through it; see docs/fuzzing.md.
package final class ConnectionServer {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let state: ServerState
    private let limits: HTTPServer.Limits

    /// Loads the model folder at `modelDirectory` and starts one batch worker.
    package init(modelDirectory: String, token: String? = nil, maxBody: Int = 1 << 20) throws {
        var options = ServeOptions(models: [modelDirectory], home: Home(root: NSTemporaryDirectory()))
        options.token = token
        options.maxBody = maxBody
        let metrics = Metrics()
        let log = Logger(label: "ner-serve", factory: { _ in SwiftLogNoOpLogHandler() })
        let batcher = Batcher(limits: .init(maxBatchSize: 64, maxDelay: 0, maxQueue: 1024, workers: 1), metrics: metrics)
        let pool = try ModelPool(specs: options.models, maxLoaded: 1, home: options.home, device: .cpu, batcher: batcher,
                                 metrics: metrics, log: log)
        state = ServerState(options: options, models: pool, batcher: batcher, metrics: metrics, log: log)
        limits = .init(readTimeout: 5, maxBody: maxBody)
        batcher.start()
        state.markWarm()
    }

    deinit {
        state.batcher.stop()
        try? group.syncShutdownGracefully()
    }

    /// Sends `request` as one connection, closes the sending side, and returns every byte the server
    /// wrote before it closed the connection; nil when it did not close within `timeout` seconds.
    package func exchange(_ request: [UInt8], timeout: Double = 10) throws -> [UInt8]? {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw ToolError.failure("socketpair: \(errnoString())")
        }
        let client = fds[1]
        defer { close(client) }
        let responder = NERResponder(state: state), limits = self.limits
        // With half-closure the server reads the client's end of input and still answers every
        // request before it; then it closes as it does when draining.
        let channel = try ClientBootstrap(group: group)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                HTTPServer.configure(channel, responder: responder, limits: limits).flatMap {
                    channel.pipeline.addHandler(QuiesceAtEndOfInput())
                }
            }
            .withConnectedSocket(fds[0])
            .wait()
        defer { try? channel.close().wait() }

        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        var sent = 0
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        if request.isEmpty { shutdown(client, Int32(SHUT_WR)) }
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { return nil }
            var p = pollfd(fd: client, events: Int16(POLLIN) | (sent < request.count ? Int16(POLLOUT) : 0), revents: 0)
            let ready = poll(&p, 1, Int32((deadline - now) / 1_000_000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            if p.revents & Int16(POLLOUT) != 0 && sent < request.count {
                let n = request.withUnsafeBytes { send(client, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n > 0 {
                    sent += n
                    if sent == request.count { shutdown(client, Int32(SHUT_WR)) }
                } else if n < 0 && errno != EAGAIN && errno != EINTR {
                    // The server closed before reading it all (a 413, a parse error): read what it said.
                    sent = request.count
                }
            }
            if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 { reply += buffer[0..<n] } else if n == 0 || (errno != EAGAIN && errno != EINTR) { return reply }
            }
        }
    }
}

/// Closes the connection once the client has sent all it will and the request in flight is answered.
private final class QuiesceAtEndOfInput: ChannelInboundHandler {
    typealias InboundIn = Never

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        context.fireUserInboundEventTriggered(event)
    }
}
