import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One whole request, as the console's handlers see it.
public struct Request: Sendable {
    public var method: String
    /// The path without its query string, percent-decoded per segment by the router.
    public var path: String
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The value of cookie `name`, if sent.
    public func cookie(_ name: String) -> String? {
        guard let header = header("cookie") else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces)
            if let eq = kv.firstIndex(of: "="), kv[..<eq] == name { return String(kv[kv.index(after: eq)...]) }
        }
        return nil
    }
}

/// A whole response, or the head of an event stream the connection keeps open.
public struct Response: Sendable {
    public var status: Int
    public var contentType: String
    public var headers: [(String, String)] = []
    public var body: [UInt8]
    /// An event stream (docs/console.md, "Events"): the body is the first chunk, and the connection
    /// then belongs to the event hub.
    public var stream = false

    public init(status: Int, contentType: String = "application/json", headers: [(String, String)] = [], body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }
}

/// The console's HTTP/1.1 server: SwiftNIO's parser and encoder (as ner-serve uses), one handler per
/// connection that reads a whole request, runs the application on a worker queue (handlers read
/// the registry and may block), and writes the answer. Event streams stay open and are fed by
/// `EventHub`.
final class ConsoleHTTPServer: @unchecked Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let app: ConsoleApp
    private var listener: Channel?

    init(app: ConsoleApp, threads: Int = 1) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.app = app
    }

    /// `tls` (a certificate chain and key) makes it speak HTTPS only.
    func start(host: String, port: Int, tls: NIOSSLContext? = nil) throws -> Int {
        let app = self.app
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try pipeline.addHandler(ConsoleConnection(app: app))
                }
            }
            .bind(host: host, port: port).wait()
        listener = channel
        return channel.localAddress?.port ?? port
    }

    func stop() {
        try? listener?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// The work queue for handlers: a few threads, so a slow model load does not hold up the pages.
let workQueue = DispatchQueue(label: "ner-console.work", attributes: .concurrent)

final class ConsoleConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let app: ConsoleApp
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(app: ConsoleApp) { self.app = app }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
            if let declared = h.headers.first(name: "content-length").flatMap(Int.init), declared > app.maxBody {
                tooLarge = true
            }
        case .body(var chunk):
            guard !tooLarge else { return }
            if body.count + chunk.readableBytes > app.maxBody {
                tooLarge = true
                body = []
                return
            }
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard let h = head else { return }
            head = nil
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            if tooLarge {
                let r = ConsoleApp.error(413, "the body is larger than the limit of \(app.maxBody) bytes (--max-upload)")
                return write(context, h, r, close: true)
            }
            let request = ConsoleConnection.request(h, body: body)
            body = []
            let app = self.app
            workQueue.async {
                let response = app.handle(request)
                loop.execute {
                    let (me, context) = bound.value
                    if response.stream {
                        me.openStream(context, h, response)
                    } else {
                        me.write(context, h, response, close: !h.isKeepAlive)
                    }
                }
            }
        }
    }

    static func request(_ h: HTTPRequestHead, body: [UInt8]) -> Request {
        var path = h.uri
        var query: [String: String] = [:]
        if let q = h.uri.firstIndex(of: "?") {
            path = String(h.uri[..<q])
            for pair in h.uri[h.uri.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = formDecode(String(kv[0]))
                query[key] = kv.count > 1 ? formDecode(String(kv[1])) : ""
            }
        }
        var headers: [String: String] = [:]
        for (name, value) in h.headers { headers[name.lowercased()] = value }
        return Request(method: h.method.rawValue, path: path, query: query, headers: headers, body: body)
    }

    private func responseHead(_ h: HTTPRequestHead, _ r: Response) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: r.contentType)
        for (name, value) in r.headers { headers.add(name: name, value: value) }
        for (name, value) in ConsoleApp.securityHeaders { headers.add(name: name, value: value) }
        headers.add(name: "Server", value: "ner-console")
        return HTTPResponseHead(version: h.version, status: HTTPResponseStatus(statusCode: r.status), headers: headers)
    }

    private func write(_ context: ChannelHandlerContext, _ h: HTTPRequestHead, _ r: Response, close: Bool) {
        var head = responseHead(h, r)
        head.headers.add(name: "Content-Length", value: String(r.body.count))
        if close { head.headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: r.body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Writes the head of an event stream (no length: chunked) and hands the channel to the hub.
    private func openStream(_ context: ChannelHandlerContext, _ h: HTTPRequestHead, _ r: Response) {
        let head = responseHead(h, r)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: r.body)))),
                              promise: nil)
        app.events.add(context.channel)
    }
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
func formDecode(_ s: String) -> String {
    let plus = s.replacingOccurrences(of: "+", with: " ")
    return plus.removingPercentEncoding ?? plus
}

/// The open event streams, and the one poller that feeds them: the registry's change stamp is read
/// once a second whatever the number of pages open, and a change is one small write per stream;
/// an idle stream gets a comment line every 25 s so proxies keep it open.
final class EventHub: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: Channel] = [:]

    var count: Int { lock.withLock { channels.count } }

    func add(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        lock.withLock { channels[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.lock.withLock { _ = self?.channels.removeValue(forKey: id) }
        }
    }

    func broadcast(_ text: String) {
        let targets = lock.withLock { Array(channels.values) }
        for channel in targets {
            let part = HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(string: text)))
            channel.writeAndFlush(part, promise: nil)
        }
    }
}
