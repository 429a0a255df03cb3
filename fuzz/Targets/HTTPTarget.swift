import NERServer

/// Bytes a client sends on one connection to `ner-serve`, through its HTTP parser, connection handler,
/// responder, batcher and the tiny model in fuzz/model. A connection the server neither answers nor
/// closes within the limit is a hang.
enum HTTPTarget {
    static let server: ConnectionServer = {
        do {
            return try ConnectionServer(modelDirectory: FuzzTarget.fuzzRoot + "/model", token: "fuzz-token", maxBody: 4096)
        } catch {
            fatalError("cannot load fuzz/model: \(error)")
        }
    }()

    static func run(_ data: [UInt8]) {
        let reply: [UInt8]?
        do { reply = try server.exchange(data, timeout: 10) } catch { fatalError("\(error)") }
        guard reply != nil else { fatalError("the server neither answered nor closed the connection in 10 s") }
    }
}
