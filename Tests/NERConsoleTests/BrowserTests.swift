import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NERCore
import NERRegistry
import Testing
import TestSupport

/// A WebDriver client (the W3C protocol chromedriver speaks, as JSON over HTTP), through curl.
final class Browser: @unchecked Sendable {
    static let driverPath = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let chromiumPath = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var available: Bool { driverPath != nil && chromiumPath != nil }
    static let element = "element-6066-11e4-a52e-4f735466cecf"

    let driver = Process()
    let port = freePort()
    var session = ""
    /// Where screenshots go: $NER_TEST_OUTPUT, else .build/console-screenshots.
    static let output: String = {
        let dir = ProcessInfo.processInfo.environment["NER_TEST_OUTPUT"] ?? TestTools.repoRoot + "/.build/console-screenshots"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    init() throws {
        driver.executableURL = URL(fileURLWithPath: Browser.driverPath!)
        driver.arguments = ["--port=\(port)"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let r = try? call("GET", "/status"), r["value"]?["ready"] == true { break }
            usleep(100_000)
        }
        let caps: JSON = ["capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": [
            "binary": .string(Browser.chromiumPath!),
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
                     "--no-first-run", "--disable-extensions"],
        ]]]]
        let r = try call("POST", "/session", caps)
        guard let id = r["value"]?["sessionId"]?.stringValue else { throw Failure("no WebDriver session: \(r.compactString)") }
        session = id
    }

    func quit() {
        if !session.isEmpty { _ = try? call("DELETE", "/session/\(session)") }
        session = ""
        if driver.isRunning {
            driver.terminate()
            let deadline = Date().addingTimeInterval(5)
            while driver.isRunning && Date() < deadline { usleep(20_000) }
            if driver.isRunning { kill(driver.processIdentifier, SIGKILL) }
        }
    }

    deinit { quit() }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: JSON? = nil) throws -> JSON {
        var args = ["-s", "--max-time", "120", "-X", method, "http://127.0.0.1:\(port)\(path)"]
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body.compactString] }
        let r = try run("/usr/bin/curl", args)
        return (try? JSON.parse(r.stdout)) ?? .null
    }

    func go(_ url: String) throws { try call("POST", "/session/\(session)/url", ["url": .string(url)]) }

    @discardableResult
    func script(_ source: String, _ args: [JSON] = []) throws -> JSON {
        try call("POST", "/session/\(session)/execute/sync", ["script": .string(source), "args": .array(args)])["value"] ?? .null
    }

    func asyncScript(_ source: String) throws -> JSON {
        try call("POST", "/session/\(session)/execute/async", ["script": .string(source), "args": []])["value"] ?? .null
    }

    func find(_ css: String) throws -> String {
        let r = try call("POST", "/session/\(session)/element", ["using": "css selector", "value": .string(css)])
        guard let id = r["value"]?[Browser.element]?.stringValue else { throw Failure("no element \(css): \(r.compactString)") }
        return id
    }

    func click(_ css: String) throws { try call("POST", "/session/\(session)/element/\(try find(css))/click", [:]) }

    func type(_ css: String, _ text: String) throws {
        let id = try find(css)
        try call("POST", "/session/\(session)/element/\(id)/clear", [:])
        try call("POST", "/session/\(session)/element/\(id)/value", ["text": .string(text)])
    }

    /// Waits until `condition` (a script's return value) is true; returns false after `seconds`.
    @discardableResult
    func wait(_ seconds: Double, _ condition: String) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try script(condition) == true { return true }
            usleep(100_000)
        }
        return false
    }

    /// Waits for the page to finish drawing `page` (the page marks itself when done).
    func rendered(_ page: String) throws -> Bool {
        try wait(20, "return document.body.dataset.rendered === '\(page)'")
    }

    func screenshot(_ name: String) throws {
        let r = try call("GET", "/session/\(session)/screenshot")
        guard let b64 = r["value"]?.stringValue, let png = Data(base64Encoded: b64) else { return }
        try png.write(to: URL(fileURLWithPath: Browser.output + "/\(name).png"))
    }

    func deleteCookies() throws { try call("DELETE", "/session/\(session)/cookie") }
}

/// The console in headless Chromium: sign in through the printed link, train from the form and
/// watch it live, promote, try the model, and what a viewer and hostile data cannot do.
@Suite(.serialized) struct BrowserTests {
    @Test(.enabled(if: Browser.available, "chromium and chromedriver are not installed (apt-get install chromium chromium-driver; make test installs them)"))
    func trainWatchPromoteTryInTheBrowser() throws {
        let dir = TempDir("ner-console-browser")
        defer { dir.remove() }
        let home = dir.path
        let data = TestTools.repoRoot + "/examples/data"
        let console = try ConsoleProcess(home: home, args: ["--data-root", data])
        defer { console.stop() }
        let link = try console.firstSignInLink()
        let browser = try Browser()
        defer { browser.quit() }

        // Sign in through the printed link: it lands on the jobs page.
        try browser.go(link)
        #expect(try browser.rendered("jobs"), "jobs page after sign-in")
        #expect(try browser.script("return document.getElementById('who').textContent") == "admin (admin)")

        // Start a training from the form.
        try browser.go(console.base + "/#/new")
        #expect(try browser.rendered("new"))
        // The sweep form counts its trials before anything is queued (the example is a 2 × 2 grid).
        #expect(try browser.wait(10, "return document.getElementById('sweep-note').textContent === '4 trial(s)'"))
        // Field by field: a third grid row multiplies the count; a random search has the trials asked for,
        // and the JSON it would queue follows the form.
        try browser.click("#sw-add")
        try browser.script("""
            const rows = document.querySelectorAll('.sw-param');
            const last = rows[rows.length - 1].querySelector('.sw-values');
            last.value = '0.3, 0.5, 0.7'; last.dispatchEvent(new Event('input', { bubbles: true }));
            """)
        #expect(try browser.wait(10, "return document.getElementById('sweep-note').textContent === '12 trial(s)'"))
        try browser.script("""
            const m = document.getElementById('sw-mode'); m.value = 'random'; m.dispatchEvent(new Event('change', { bubbles: true }));
            const rows = document.querySelectorAll('.sw-param');
            const d = rows[rows.length - 1].querySelector('.sw-dist'); d.value = 'choice'; d.dispatchEvent(new Event('change', { bubbles: true }));
            const t = document.getElementById('sw-trials'); t.value = '6'; t.dispatchEvent(new Event('input', { bubbles: true }));
            """)
        #expect(try browser.wait(10, "return document.getElementById('sweep-note').textContent === '6 trial(s)'"))
        let sweepJSON = try JSON.parse(try #require(try browser.script("return document.getElementById('sweep-json').value").stringValue))
        #expect(sweepJSON["random"]?["dropout"]?["choice"] == [0.3, 0.5, 0.7])
        #expect(sweepJSON["random"]?["learning_rate"]?["log_uniform"] == [0.001, 0.002])
        #expect(sweepJSON["trials"] == 6)
        for (field, value) in [("name", "web"), ("train", data + "/train.txt"), ("dev", data + "/dev.txt"), ("epochs", "12"),
                               ("hidden_size", "32"), ("word_dim", "32"), ("char_dim", "16"), ("threads", "1"), ("patience", "20")] {
            try browser.type("#in-\(field)", value)
        }
        try browser.screenshot("new-training")
        // A bad value first: the error appears next to its field.
        try browser.type("#in-epochs", "0")
        try browser.click("#submit-job")
        #expect(try browser.wait(10, "return document.getElementById('err-epochs').textContent.includes('epochs must be between')"))
        try browser.type("#in-epochs", "12")
        try browser.click("#submit-job")
        #expect(try browser.wait(10, "return location.hash.startsWith('#/job/')"))
        #expect(try browser.rendered("job"))
        let jobId = try #require(try browser.script("return decodeURIComponent(location.hash.slice(6))").stringValue)
        #expect(jobId.hasPrefix("web-"))
        // Follow the status shown, without reloading, while a dispatcher runs the job.
        try browser.script("""
            window.seen = [document.getElementById('job-status').textContent]; window.marker = 42;
            new MutationObserver(() => { const s = document.getElementById('job-status').textContent;
              if (s && window.seen[window.seen.length - 1] !== s) window.seen.push(s); })
              .observe(document.getElementById('main'), { subtree: true, childList: true, characterData: true });
            """)
        // The tiny model trains in about a second; the pause keeps the job visibly running across a
        // few of the console's one-second event polls.
        let dispatcher = try run("ner-dispatch", ["--drain", "--home", home, "--quiet",
                                                  "--command", "sleep 3 && ner-train | ner-pack | ner-register"])
        #expect(dispatcher.status == 0, "\(dispatcher.stderr)")
        let registered = try browser.wait(30, "return document.getElementById('job-status').textContent === 'registered'")
        let seenJSON = try browser.script("return window.seen").compactString
        #expect(registered, "seen: \(seenJSON)")
        let seen = try browser.script("return window.seen").arrayValue?.compactMap(\.stringValue) ?? []
        #expect(seen.first == "queued" && seen.contains("running") && seen.last == "registered", "seen \(seen)")
        #expect(try browser.script("return window.marker") == 42, "the page was not reloaded")
        #expect(try browser.wait(10, "return document.getElementById('job-log').textContent.length > 0"))
        try browser.screenshot("job")

        // The model: one point per epoch on the learning curve; promote it; the history names the user.
        try browser.go(console.base + "/#/model/web")
        #expect(try browser.rendered("model"))
        let epochs = try browser.asyncScript("""
            const done = arguments[arguments.length - 1];
            fetch('/api/model/web@latest').then((r) => r.json()).then((d) => done(d.history.length));
            """).intValue ?? -1
        #expect(epochs >= 1)
        #expect(try browser.wait(10, "return document.querySelectorAll('svg[data-chart=devf1] circle.pt').length === \(epochs)"))
        #expect(try browser.script("return document.querySelectorAll('svg[data-chart=loss] circle.pt').length").intValue == epochs)
        try browser.click("button.promote")
        try browser.click("#confirm-yes")
        #expect(try browser.wait(10, "const c = document.querySelector('#alias-history td.who'); return !!c && c.textContent === 'admin'"))
        try browser.screenshot("model")
        let history = try run("ner-register", ["history", "web", "--home", home])
        #expect(history.stdout.contains(#""who":"admin""#), "the registry row ner-register reads")

        // Try it: the highlighted spans are ner-infer's entities for the same sentence.
        let sentence = "George Washington visited Paris with the European Union delegation in Germany ."
        try browser.go(console.base + "/#/try?model=web")
        #expect(try browser.rendered("try"))
        try browser.type("#try-text", sentence)
        try browser.click("#try-go")
        #expect(try browser.wait(15, "return !!document.body.dataset.tagged"))
        let marks = try browser.script("""
            return Array.from(document.querySelectorAll('#try-out mark')).map((m) => [m.querySelector('.etext').textContent, m.dataset.tag]);
            """).arrayValue?.map { $0.arrayValue?.compactMap(\.stringValue) ?? [] } ?? []
        let inferred = try run("ner-infer", ["--model", "web", "--home", home], stdin: sentence + "\n")
        #expect(inferred.status == 0, "\(inferred.stderr)")
        let expected = (try JSON.parse(inferred.lines.first ?? "{}"))["entities"]?.arrayValue?.map {
            [$0["text"]?.stringValue ?? "", $0["tag"]?.stringValue ?? ""]
        } ?? []
        #expect(marks == expected, "page \(marks) vs ner-infer \(expected)")
        try browser.screenshot("try")

        // Hostile data is text: a job named like markup, and a log line with a script in it.
        let registry = try Registry(path: home + "/registry.sqlite")
        let hostile = "<img src=x onerror=window.xss=1>"
        try registry.recordTransition(jobId: "evil-1", name: hostile, status: "failed", attempt: 1, error: "<script>window.xss=2</script>")
        try "<script>window.xss=3</script>\n<img src=x onerror=window.xss=4>\n".write(toFile: home + "/logs/evil-1.log", atomically: true, encoding: .utf8)
        try browser.go(console.base + "/#/jobs")
        #expect(try browser.rendered("jobs"))
        #expect(try browser.wait(10, "return Array.from(document.querySelectorAll('#jobs td')).some((td) => td.textContent === \(JSON.string(hostile).compactString))"))
        try browser.go(console.base + "/#/job/evil-1")
        #expect(try browser.rendered("job"))
        #expect(try browser.wait(10, "return document.getElementById('job-log').textContent.includes('<script>window.xss=3</script>')"))
        #expect(try browser.script("return window.xss === undefined && document.querySelectorAll('#main img, #main script').length === 0") == true)

        // Two more versions of the name, as trials of one sweep: two versions side by side, and the sweep.
        let first = try #require(try browser.asyncScript("""
            const done = arguments[arguments.length - 1];
            fetch('/api/model/web@latest').then((r) => r.json()).then((d) => done([d.model_id, d.record.model_dir]));
            """).arrayValue?.compactMap(\.stringValue))
        try #require(first.count == 2)
        for (id, lr) in [("web-b", 0.002), ("web-c", 0.004)] {
            let packed = try run("ner-pack", [first[1], "--name", "web", "--model-id", id, "--home", home, "--quiet"])
            try #require(packed.status == 0, "\(packed.stderr)")
            var record = try JSON.parse(packed.stdout)
            record["metrics"] = try JSON.parse(try String(contentsOfFile: first[1] + "/metrics.json", encoding: .utf8))
            record["sweep_id"] = "web-sweep"
            record["sweep_params"] = ["learning_rate": .double(lr)]
            let registered = try run("ner-register", ["--home", home, "--quiet"], stdin: record.compactString + "\n")
            try #require(registered.status == 0, "\(registered.stderr)")
        }
        try browser.go(console.base + "/#/model/web?v=\(first[0])&cmp=web-b")
        #expect(try browser.rendered("model"))
        #expect(try browser.wait(10, "return !!document.getElementById('diff') && document.querySelectorAll('svg[data-chart=devf1] circle.pt-b').length === \(epochs)"))
        try browser.screenshot("compare")
        try browser.go(console.base + "/#/sweep/web-sweep")
        #expect(try browser.rendered("sweep"))
        #expect(try browser.script("return document.querySelectorAll('#trials tr').length").intValue == 2)
        #expect(try browser.script("return document.querySelectorAll('svg[data-chart=param-learning_rate] circle').length").intValue == 2)
        try browser.screenshot("sweep")
        for (page, name) in [("#/jobs", "jobs"), ("#/models", "models"), ("#/users", "users"), ("#/audit", "audit")] {
            try browser.go(console.base + "/" + page)
            #expect(try browser.rendered(name))
            try browser.screenshot(name)
        }

        // A viewer: no promote button, and a hand-made promote POST gets 403; no CSRF token, 403.
        let viewerToken = try addUser(home, "vic", role: "viewer")
        try browser.deleteCookies()
        try browser.go(console.base + "/signin?token=" + viewerToken)
        #expect(try browser.rendered("jobs"))
        try browser.go(console.base + "/#/model/web")
        #expect(try browser.rendered("model"))
        #expect(try browser.script("return document.querySelectorAll('button.promote, #rollback').length").intValue == 0)
        let forged = try browser.asyncScript("""
            const done = arguments[arguments.length - 1];
            fetch('/api/models/web/promote', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': S.csrf },
              body: JSON.stringify({ model: 'web:1', alias: 'staging' }) }).then((r) => done(r.status));
            """)
        #expect(forged == 403)
        let noCSRF = try browser.asyncScript("""
            const done = arguments[arguments.length - 1];
            fetch('/api/ner', { method: 'POST', headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ model: 'web', text: 'x' }) }).then((r) => done(r.status));
            """)
        #expect(noCSRF == 403)
        try browser.screenshot("model-viewer")
    }
}
