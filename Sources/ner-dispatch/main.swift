import ArgumentParser
import Foundation
import NERCLI
import NERCore
import NERQueue
import NERDispatch
import NERRegistry

struct Dispatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-dispatch",
        abstract: "Claim queued NER jobs and run them while fewer than N run.",
        usage: "ner-dispatch [--once | --drain | --watch] [--max-running N] [--command CMD] [--backend local|slurm [--sbatch-args ARGS]]",
        discussion: """
        Claims jobs from $NER_HOME/spool/new by atomic rename into spool/cur while fewer than \
        --max-running jobs run (counted over every dispatcher sharing the spool), and runs each \
        one as `bash -o pipefail -c COMMAND` with the job record on stdin, stdout kept as the job's \
        final record, stderr appended to $NER_HOME/logs/JOB_ID.log. The default command is the \
        pipeline `ner-train | ner-pack | ner-register`, found beside ner-dispatch first. The job's \
        exit status decides success.

        WRITES
          Every status transition (running, trained, packed, registered or done, failed, queued \
        again, cancelled) to the registry and as one JSON line on stdout: \
        {"type":"transition","job_id":...,"status":...,"attempt":...,"at":...}. Finished jobs go \
        to spool/done; a failed job is retried with attempt + 1, and after --max-attempts it is \
        dead-lettered to spool/failed with its cause.

        BAYESIAN SWEEPS
          When a trial of a bayes sweep (ner-queue --sweep with "method": "bayes") ends, the \
        dispatcher queues the sweep's next trial(s) from the results so far and claims them at \
        once; every run first catches up sweeps whose trials ended while none ran (docs/sweeps.md).

        CLAIMS AND LEASES
          A claim carries its owner (host, pid) and a lease the owner renews while the job runs. \
        A job outlives a dispatcher killed with SIGKILL: it runs in its own process group, which \
        spool/run/JOB_ID.pid names, holds a lock on spool/run/JOB_ID.lock while it runs, and its \
        exit status is written to spool/run/JOB_ID.rc when it ends. The next dispatcher on that \
        host takes such a job over: it tends it while it runs and records how it ended, so the job \
        runs once and is recorded once (docs/spool.md). A claim whose owner died \
        with no job left to take over, or whose lease expired (any host), is returned to the queue \
        with attempt + 1 by any dispatcher; on the same host the dead owner's job processes are \
        killed first, so a job never runs twice at once. ner-register keeps one model per job, \
        whatever order attempts finish in.

        TIME LIMITS AND STOPPING
          A local job runs at most its resources.time (default 02:00:00; Slurm's forms MM, MM:SS, \
        HH:MM:SS, D-HH[:MM[:SS]]; UNLIMITED for none). Past it, the job's process group gets \
        SIGTERM, then SIGKILL after --grace seconds, and the attempt fails with the cause "time \
        limit HH:MM:SS" (retried up to --max-attempts). A cancelled job is stopped the same way. On \
        SIGTERM or SIGINT the dispatcher stops claiming, stops its running jobs the same way, puts \
        them back in the queue without spending an attempt, and exits 0 within --grace seconds; a \
        second signal kills the jobs at once. (With slurm, the dispatcher exits at once and the \
        jobs run on in Slurm, which enforces their time itself.)

        SLURM (--backend slurm)
          Each claimed job becomes one `sbatch --parsable` submission of a script, kept as \
        spool/run/JOB_ID.sh, that runs COMMAND inside the allocation with the job record on stdin; \
        stdout goes to spool/run/JOB_ID.out, stderr to spool/run/JOB_ID.err. The job's resources \
        become sbatch options: gpus → --gres=gpu:N, cpus → --cpus-per-task, mem → --mem, time → \
        --time, partition → --partition; --sbatch-args adds more (account, qos, constraint). Jobs \
        of one sweep (ner-queue --sweep) claimed together go in as one job array. The Slurm job id \
        is the job's backend_id in the registry and slurm_job_id in its final record. \
        --max-running counts the jobs Slurm holds for this spool (pending and running). Slurm's \
        verdict decides: COMPLETED is success; FAILED, TIMEOUT, CANCELLED, NODE_FAIL, OUT_OF_MEMORY \
        are a failed attempt with that cause, retried up to --max-attempts. Slurm is asked once per \
        loop (squeue), every --poll seconds (default 5 with slurm). A dispatcher that dies leaves \
        its jobs running; the next one takes them over rather than submitting them again. With \
        --once it submits what may run, records what finished, and exits without waiting (cron). \
        sbatch missing, or a controller that does not answer, is exit 69 and the job stays queued.

        MODES
          --once   claim what may run now, wait for those jobs, exit (for cron); with slurm, do \
        not wait.
          --drain  keep claiming until the queue is empty and every job it started ended.
          --watch  keep going until SIGINT/SIGTERM.

        EXAMPLES
          ner-dispatch --drain --max-running 2
          * * * * * ner-dispatch --once --max-running 1 >> ~/.ner/dispatch.ndjson 2>&1
          ner-dispatch --watch --command 'ner-train | ner-pack | ner-register && notify-send done'
          * * * * * ner-dispatch --once --backend slurm --max-running 8 >> $NER_HOME/dispatch.ndjson 2>&1

        \(exitCodeHelp)
          ner-dispatch exits 1 when a job it ran was dead-lettered during this run.
        """,
        version: Toolchain.version)

    @OptionGroup var common: CommonOptions

    @Flag(help: "Claim what may run now, wait for it, exit (the default).") var once = false
    @Flag(help: "Run until the queue is empty.") var drain = false
    @Flag(help: "Keep running and claiming until SIGINT/SIGTERM.") var watch = false
    @Option(help: "Most jobs running at once, across all dispatchers sharing the spool.") var maxRunning = 1
    @Option(help: "Attempts before a failing job is dead-lettered to spool/failed.") var maxAttempts = 3
    @Option(help: ArgumentHelp("Seconds a claim stays valid without a heartbeat.", valueName: "SECONDS")) var lease: Double = 300
    @Option(help: ArgumentHelp("Seconds between checks on running jobs (default: 0.2 local, 5 slurm).", valueName: "SECONDS"))
    var poll: Double?
    @Option(help: ArgumentHelp("Command each job runs, its record on stdin.", valueName: "CMD"))
    var command = "ner-train | ner-pack | ner-register"
    @Option(help: ArgumentHelp("Seconds a stopped job (time limit, cancel, SIGTERM) has before SIGKILL.", valueName: "SECONDS"))
    var grace: Double = 30
    @Option(help: "Where jobs run: local (child processes) or slurm (sbatch).") var backend = "local"
    @Option(help: ArgumentHelp("Extra sbatch options for every job, split at spaces (slurm only).", valueName: "ARGS"))
    var sbatchArgs: String?

    func validate() throws {
        if [once, drain, watch].filter({ $0 }).count > 1 { throw ValidationError("give only one of --once, --drain, --watch") }
        if maxRunning < 1 { throw ValidationError("--max-running must be at least 1") }
        if maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1") }
        if !(lease > 0) { throw ValidationError("--lease must be positive") }
        if let poll, !(poll > 0 && poll <= 60) { throw ValidationError("--poll must be in (0, 60] seconds") }
        if !(grace >= 0 && grace <= 3600) { throw ValidationError("--grace must be in [0, 3600] seconds") }
        if !["local", "slurm"].contains(backend) { throw ValidationError("unknown backend '\(backend)' (local or slurm)") }
        if sbatchArgs != nil && backend != "slurm" { throw ValidationError("--sbatch-args needs --backend slurm") }
    }

    func run() throws {
        try runTool("ner-dispatch", common) { log in
            let home = common.resolvedHome
            try home.ensureLayout()
            let registry = try Registry(path: home.registry)
            var options = DispatchOptions()
            options.mode = watch ? .watch : drain ? .drain : .once
            options.maxRunning = maxRunning
            options.maxAttempts = maxAttempts
            options.lease = lease
            options.pollInterval = poll ?? (backend == "slurm" ? 5 : 0.2)
            options.command = command
            options.grace = grace
            options.toolDirectory = executableDirectory()
            let spool = Spool(home: home)
            let runner: DispatchBackend = backend == "slurm"
                ? try SlurmBackend(spool: spool, sbatchArgs: (sbatchArgs ?? "").split(separator: " ").map(String.init))
                : LocalBackend(spool: spool)
            let dispatcher = Dispatcher(home: home, registry: registry, backend: runner,
                                        options: options, emit: { Output.line($0) })
            dispatcher.log = log
            dispatcher.installStopHandlers()
            try dispatcher.run()
            if dispatcher.deadLettered > 0 {
                throw ToolError.failure("\(dispatcher.deadLettered) job(s) dead-lettered (see ner-queue --list)")
            }
        }
    }
}

func executableDirectory() -> String? {
    guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
    return (exe as NSString).deletingLastPathComponent
}

Dispatch.main()
