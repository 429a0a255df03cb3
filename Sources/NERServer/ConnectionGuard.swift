import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Sits in each connection's pipeline, after HTTP decoding, and protects the server from its clients:
///
/// - A slow client (headers or body dripped in a byte at a time) gets `readTimeout` to deliver each
///   whole request, counted from when the server starts waiting for it; then the connection is closed.
///   Time spent tagging does not count.
/// - A response that says `Connection: close` (413: the rest of an oversized body is not worth reading)
///   closes the connection once it is written, instead of draining what the client still sends.
/// - `Expect: 100-continue` (curl sends it for bodies over 1 KiB) is answered at once when the declared
///   body fits, so such clients do not sit out their one-second wait.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let readTimeout: TimeAmount
    private let maxBody: Int
    private var deadline: Scheduled<Void>?
    /// A request head has arrived but not its end.
    private var reading = false
    /// Requests read in full and not yet answered.
    private var unanswered = 0
    /// The request being read was answered before its end arrived (an error that did not need the body).
    private var answeredEarly = false
    private var closeAfterResponse = false

    init(readTimeout: TimeAmount, maxBody: Int) {
        self.readTimeout = readTimeout
        self.maxBody = maxBody
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            reading = true
            if deadline == nil { arm(context) }
            if request.headerFields[.expect]?.lowercased() == "100-continue",
               let length = request.headerFields[.contentLength].flatMap(Int.init), length <= maxBody {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        case .body:
            break
        case .end:
            reading = false
            if answeredEarly {
                answeredEarly = false
                arm(context)
            } else {
                unanswered += 1
                disarm()
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            if response.headerFields[.connection]?.lowercased() == "close" { closeAfterResponse = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            context.writeAndFlush(data, promise: promise)
            if closeAfterResponse {
                context.close(promise: nil)
            } else if unanswered > 0 {
                unanswered -= 1
                if unanswered == 0 && !reading { arm(context) }
            } else if reading {
                // The deadline armed at the head keeps covering the rest of the body.
                answeredEarly = true
            }
        }
    }

    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: readTimeout) { channel.close(promise: nil) }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}
