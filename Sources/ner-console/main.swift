import ArgumentParser
import Foundation
import NERCLI
import NERConsole
import NERCore
import NERRegistry

struct NERConsoleTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-console",
        abstract: "A web console over $NER_HOME: jobs, training, models, promotions, and trying a model.",
        usage: """
        ner-console [--host ADDRESS] [--port N] [--data-root DIR ...] [options]
          ner-console user add NAME --role viewer|operator|admin
          ner-console user list | user rm NAME | user reset NAME [--role ROLE]
        """,
        discussion: """
        Serves a web page, and the JSON API under it, over the same state folder the other tools \
        share: a job queued from the page is the spool file ner-queue writes (through the same \
        validation), a promotion is the registry row `ner-register promote` writes, so the console, \
        the command-line tools, cron and Slurm work side by side. The page and its scripts are \
        compiled into the binary; nothing is fetched at run time.

        PAGES
          Jobs (filter by name, status, sweep; live status without reloading; timeline, log tail, \
        cancel), New training (the ner-queue fields with their defaults, CoNLL uploads, sweeps, \
        retraining), Models (versions, metrics, aliases and their history; promote, roll back), a \
        model version (learning curve, per-type scores, two versions side by side), a sweep \
        (trials by dev F1, each parameter against dev F1, promote the best), Try it (entities \
        highlighted, the JSON `POST /ner` of ner-serve gives), Users and Audit.

        USERS
          Roles: viewer (reads everything), operator (also queues, cancels, promotes, rolls back), \
        admin (also manages users). `ner-console user add NAME --role ROLE` prints a one-time \
        sign-in token; only its SHA-256 is stored, in the registry. On a first start with no users \
        an admin is created and a one-time sign-in link is printed on stderr. Sessions are \
        HttpOnly, SameSite=Strict cookies that expire (--session-hours); every POST needs the \
        session's CSRF token and the role; each change is in the registry's audit under the \
        user's name.

        DATA
          A job may name data files only under a --data-root (repeatable) or uploaded through the \
        page (kept under $NER_HOME/uploads, checked as CoNLL, at most --max-upload MiB).

        NETWORK
          Binds 127.0.0.1 by default. Another address needs TLS: --tls-cert and --tls-key (PEM) \
        make the console speak HTTPS itself (its cookie is then Secure), or put it behind a TLS \
        proxy (docs/console.md shows nginx) and give --insecure-http and --secure-cookies. Events \
        reach the pages as Server-Sent Events (GET /api/events).

        EXAMPLES
          ner-console --data-root /data/conll
          ner-console --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
          ner-console user add ada --role operator
          ssh -L 8090:127.0.0.1:8090 gpu-node   # then open the printed link locally
          curl -s -b jar -c jar localhost:8090/api/signin -d '{"token":"..."}'

        \(exitCodeHelp)
        """,
        version: Toolchain.version,
        subcommands: [Serve.self, User.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the console (the default).",
        discussion: "See ner-console --help.\n\n\(exitCodeHelp)")

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "ADDRESS")) var host = "127.0.0.1"
    @Option(help: ArgumentHelp("Port to listen on (0: any free port).", valueName: "N")) var port = 8090
    @Option(name: .customLong("data-root"), help: ArgumentHelp("A folder whose files jobs may use as data (repeatable).", valueName: "DIR"))
    var dataRoots: [String] = []
    @Option(help: ArgumentHelp("Largest upload, in MiB.", valueName: "MIB")) var maxUpload = 64
    @Option(help: ArgumentHelp("Hours a session lasts.", valueName: "HOURS")) var sessionHours = 12.0
    @Option(help: ArgumentHelp("Models kept loaded for Try it.", valueName: "N")) var models = 4
    @Flag(help: "Allow an address other than loopback without TLS (behind a TLS proxy).") var insecureHTTP = false
    @Option(help: ArgumentHelp("Serve HTTPS with this PEM certificate (chain); needs --tls-key.", valueName: "FILE")) var tlsCert: String?
    @Option(help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "FILE")) var tlsKey: String?
    @Flag(help: "Mark the session cookie Secure (the page is reached over HTTPS through a proxy).") var secureCookies = false

    func run() throws {
        try runTool("ner-console", common) { log in
            guard (0...65535).contains(port) else { throw ToolError.usage("--port must be 0 to 65535, got \(port)") }
            guard maxUpload >= 1, sessionHours > 0, models >= 1 else {
                throw ToolError.usage("--max-upload, --session-hours and --models must be positive")
            }
            var options = ConsoleOptions(home: common.resolvedHome)
            for root in dataRoots {
                let path = absolute(root)
                guard isDirectory(path) else { throw ToolError.noInput("--data-root \(clipped(root)): no such folder") }
                options.dataRoots.append(path)
            }
            options.maxUpload = maxUpload << 20
            options.sessionSeconds = sessionHours * 3600
            options.modelCache = models
            options.secureCookies = secureCookies
            if (tlsCert == nil) != (tlsKey == nil) { throw ToolError.usage("--tls-cert and --tls-key go together") }
            let tls = tlsCert.flatMap { cert in tlsKey.map { (certificate: cert, key: $0) } }
            try Console.serve(options, host: host, port: port, insecureHTTP: insecureHTTP, tls: tls, log: log)
        }
    }
}

struct User: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the console's users.",
        subcommands: [Add.self, ListUsers.self, Remove.self, Reset.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user; prints its one-time sign-in token.",
            discussion: """
            Prints {"name", "role", "token"} as one JSON line. The token signs in once, at \
            /signin?token=TOKEN or with POST /api/signin; only its SHA-256 is kept.

            \(exitCodeHelp)
            """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name (letters, digits, '.', '_', '-').") var name: String
        @Option(help: "viewer, operator or admin.") var role = "viewer"

        func run() throws {
            try runTool("ner-console", common) { _ in
                let registry = try Registry(path: common.resolvedHome.registry)
                let token = try UserAdmin.add(registry, name: name, role: role, by: currentUser())
                Output.line(["type": "user", "name": .string(name), "role": .string(role), "token": .string(token)])
            }
        }
    }

    struct ListUsers: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the users, one JSON line each.",
                                                        discussion: exitCodeHelp)
        @OptionGroup var common: CommonOptions

        func run() throws {
            try runTool("ner-console", common) { _ in
                for u in try Registry(path: common.resolvedHome.registry).users() { Output.line(u.json) }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a user and end their sessions.",
                                                        discussion: exitCodeHelp)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name.") var name: String

        func run() throws {
            try runTool("ner-console", common) { _ in
                try Registry(path: common.resolvedHome.registry).removeUser(name: name, by: currentUser())
                Output.line(["type": "user", "name": .string(name), "removed": true])
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a user a new one-time token (and optionally a new role); ends their sessions.",
            discussion: exitCodeHelp)
        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name.") var name: String
        @Option(help: "A new role: viewer, operator or admin.") var role: String?

        func run() throws {
            try runTool("ner-console", common) { _ in
                let registry = try Registry(path: common.resolvedHome.registry)
                let token = try UserAdmin.reset(registry, name: name, role: role, by: currentUser())
                Output.line(["type": "user", "name": .string(name), "token": .string(token)])
            }
        }
    }
}

NERConsoleTool.main()
