import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP/1.1 server under `ner-serve`: SwiftNIO's parser and encoder, and one `HTTPConnection`
/// per connection that reads a whole request, hands it to the responder and writes the reply.
/// A request costs no task and no thread hop beyond the batch worker; with an async framework in
/// between, the per-request overhead was as large as tagging the sentence.
final class HTTPServer: @unchecked Sendable {
    struct Limits {
        /// Seconds a client has to send each whole request once the server waits for it.
        var readTimeout: Double
        /// Largest accepted body, in bytes.
        var maxBody: Int
    }

    private let group: MultiThreadedEventLoopGroup
    private let responder: NERResponder
    private let limits: Limits
    private let connections = Connections()
    private var listener: Channel?

    init(responder: NERResponder, threads: Int, limits: Limits) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.responder = responder
        self.limits = limits
    }

    /// Binds `host:port` and starts accepting; returns the port (useful when `port` was 0).
    func start(host: String, port: Int) throws -> Int {
        let responder = self.responder, limits = self.limits, connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                HTTPServer.configure(channel, responder: responder, limits: limits).map { connections.add(channel) }
            }
        let channel = try bootstrap.bind(host: host, port: port).wait()
        listener = channel
        return channel.localAddress?.port ?? port
    }

    /// The handlers of one connection: NIO's HTTP/1.1 parser, encoder and pipelining, then ours.
    static func configure(_ channel: Channel, responder: NERResponder, limits: Limits) -> EventLoopFuture<Void> {
        channel.pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true).flatMap {
            channel.pipeline.addHandler(HTTPConnection(responder: responder, limits: limits))
        }
    }

    /// Stops accepting connections, lets each open one answer the request it is in with
    /// `Connection: close` (an idle one gets `HTTPConnection.drainLinger` for a request already on
    /// its way), and returns when all are closed.
    func drain() {
        try? listener?.close().wait()
        connections.quiesceAndWait()
    }

    func shutdown() {
        try? group.syncShutdownGracefully()
    }
}

/// The open connections, so a drain can reach each of them.
private final class Connections: @unchecked Sendable {
    private let condition = NSCondition()
    private var open: [ObjectIdentifier: Channel] = [:]
    private var quiescing = false

    func add(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        let late = condition.withLock {
            open[id] = channel
            return quiescing
        }
        channel.closeFuture.whenComplete { [self] _ in
            condition.withLock {
                open[id] = nil
                condition.broadcast()
            }
        }
        if late { Connections.quiesce(channel) }
    }

    func quiesceAndWait() {
        let channels = condition.withLock {
            quiescing = true
            return Array(open.values)
        }
        for c in channels { Connections.quiesce(c) }
        condition.withLock {
            while !open.isEmpty { condition.wait() }
        }
    }

    private static func quiesce(_ channel: Channel) {
        channel.eventLoop.execute {
            channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
    }
}

/// Tells a connection the server is draining. Not NIO's ChannelShouldQuiesceEvent: its pipelining
/// handler closes a connection that looks idle at once, and a keep-alive client may have sent its
/// next request already, which the close then resets unanswered.
struct DrainEvent {}

/// One connection: assembles each request, enforces the body limit and the read timeout, and writes
/// the reply with its headers, the access-log line and the metrics.
///
/// - A slow client (headers or body dripped in a byte at a time) gets `readTimeout` to deliver each
///   whole request, counted from when the server starts waiting for it; then the connection is
///   closed. Time spent tagging does not count.
/// - A body over the limit is answered 413 as soon as that is known (from Content-Length, before any
///   of it is read), and the connection is closed rather than drained.
/// - `Expect: 100-continue` (curl sends it for bodies over 1 KiB) is answered at once when the declared
///   body fits, so such clients do not sit out their one-second wait.
final class HTTPConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: NERResponder
    private let state: ServerState
    private let readTimeout: TimeAmount
    private let maxBody: Int
    /// When the server started waiting for the request being read (nil while one is answered).
    private var waitingSince: NIODeadline?
    /// The pending check of `waitingSince`; one per read timeout at most, not one per request.
    private var check: Scheduled<Void>?
    private var remote = "-"
    /// The request being read, nil between requests.
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var started: UInt64 = 0
    /// The request being read was answered already (413); the rest of it is ignored.
    private var answeredEarly = false
    /// Requests read in full and not answered yet (more than one only when a client pipelines).
    private var unanswered = 0
    /// The server is draining: every answer closes the connection.
    private var draining = false
    /// How long a connection that is idle when the drain starts stays open for a request a keep-alive
    /// client sent before it could see the connection close.
    static let drainLinger = TimeAmount.milliseconds(500)

    init(responder: NERResponder, limits: HTTPServer.Limits) {
        self.responder = responder
        state = responder.state
        readTimeout = .nanoseconds(Int64(limits.readTimeout * 1e9))
        maxBody = limits.maxBody
    }

    func channelActive(context: ChannelHandlerContext) {
        if let address = context.channel.remoteAddress, let ip = address.ipAddress {
            remote = address.port.map { "\(ip):\($0)" } ?? ip
        }
        startWaiting(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        waitingSince = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is DrainEvent else { return context.fireUserInboundEventTriggered(event) }
        draining = true
        guard idle else { return }  // the answer in progress closes it
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: HTTPConnection.drainLinger) {
            let (me, context) = bound.value
            if me.idle { context.close(promise: nil) }
        }
    }

    /// No request is being read or answered on this connection.
    private var idle: Bool { head == nil && unanswered == 0 }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
            answeredEarly = false
            started = DispatchTime.now().uptimeNanoseconds
            if waitingSince == nil { startWaiting(context) }
            let declared = h.headers.first(name: "content-length").flatMap { Int($0) }
            if let declared, declared > maxBody {
                answeredEarly = true
                finish(context, h, HTTPConnection.path(of: h), responder.tooLarge(maxBody), bytesIn: 0, started: started)
            } else if h.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .continue))),
                                      promise: nil)
            }
        case .body(var chunk):
            guard let h = head, !answeredEarly else { return }
            if body.readableBytes + chunk.readableBytes > maxBody {
                answeredEarly = true
                finish(context, h, HTTPConnection.path(of: h), responder.tooLarge(maxBody), bytesIn: body.readableBytes,
                       started: started)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let h = head else { return }
            head = nil
            if answeredEarly { return }
            waitingSince = nil
            unanswered += 1
            let path = HTTPConnection.path(of: h)
            let request = IncomingRequest(method: h.method, path: path, headers: h.headers, body: body)
            let bytesIn = body.readableBytes, started = self.started
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            // Always written from a fresh event-loop task, even when the answer is ready at once:
            // writing the end of a response makes NIO's pipelining handler deliver the next queued
            // request, and answering that one inside the same call would re-enter its delivery loop.
            responder.respond(to: request) { reply in
                loop.execute {
                    let (me, context) = bound.value
                    me.unanswered -= 1
                    me.finish(context, h, path, reply, bytesIn: bytesIn, started: started)
                }
            }
        }
    }

    /// The request's path without its query string.
    private static func path(of h: HTTPRequestHead) -> String {
        h.uri.firstIndex(of: "?").map { String(h.uri[..<$0]) } ?? h.uri
    }

    /// Writes `reply` to the request `h` (whose path is `path`), then logs and counts it.
    private func finish(_ context: ChannelHandlerContext, _ h: HTTPRequestHead, _ path: String, _ reply: Reply,
                        bytesIn: Int, started: UInt64) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let keepAlive = h.isKeepAlive && !reply.close && !draining
        var headers = HTTPHeaders()
        headers.reserveCapacity(6 + reply.headers.count)
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: String(reply.body.readableBytes))
        for (name, value) in reply.headers { headers.add(name: name, value: value) }
        headers.add(name: "Date", value: HTTPDate.now())
        headers.add(name: "Server", value: "ner-serve")
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if h.version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: reply.status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(reply.body))), promise: nil)
        if keepAlive {
            // Writing the end may deliver a pipelined request into this handler at once.
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            // The next request's clock starts now, unless one is being read or answered already.
            if head == nil && unanswered == 0 { startWaiting(context) }
        } else {
            // Writing the end may deliver a request the client pipelined: while draining, that one
            // is answered too, and the last answer closes.
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let draining = self.draining
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                let (me, context) = bound.value
                if !draining || me.idle { context.close(promise: nil) }
            }
        }

        state.metrics.observeRequest(path: path, status: Int(reply.status.code), seconds: seconds, model: reply.model)
        state.log.info("\(h.method.rawValue) \(path) \(reply.status.code)", metadata: [
            "remote": .string(remote),
            "ms": .string(HTTPConnection.milliseconds(seconds)),
            "bytes_in": .stringConvertible(bytesIn),
            "bytes_out": .stringConvertible(reply.body.readableBytes),
        ])
    }

    /// Seconds as milliseconds with two decimals ("3.07"), without a format-string parse per request.
    static func milliseconds(_ seconds: Double) -> String {
        let hundredths = Int((seconds * 100_000).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// Starts the read-timeout clock for the next request. A check is scheduled only when none is
    /// pending, rather than a timer scheduled and cancelled for every request (about 1.4% of the
    /// server's CPU in a profile under load).
    private func startWaiting(_ context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        waitingSince = now
        if check == nil { scheduleCheck(context, at: now + readTimeout) }
    }

    private func scheduleCheck(_ context: ChannelHandlerContext, at due: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(deadline: due) {
            let (me, context) = bound.value
            me.check = nil
            // Not waiting (a request is being answered): the next wait schedules its own check.
            guard let since = me.waitingSince else { return }
            let due = since + me.readTimeout
            if due <= .now() { context.close(promise: nil) } else { me.scheduleCheck(context, at: due) }
        }
    }
}

/// The Date header's value, formatted once a second rather than once a response.
enum HTTPDate {
    private static let cache = DateCache()

    static func now() -> String { cache.value(at: time(nil)) }

    private final class DateCache: @unchecked Sendable {
        private let lock = NSLock()
        private var second: time_t = 0
        private var text = ""

        func value(at t: time_t) -> String {
            lock.lock()
            defer { lock.unlock() }
            if t != second {
                var now = t, parts = tm()
                gmtime_r(&now, &parts)
                var buffer = [CChar](repeating: 0, count: 64)
                let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
                text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                second = t
            }
            return text
        }
    }
}
