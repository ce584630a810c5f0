
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'tchat' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'tchat'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'tchat' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the chat server')
            [CompletionResult]::new('join', 'join', [CompletionResultType]::ParameterValue, 'Join a chat server with the interactive terminal client')
            [CompletionResult]::new('ctl', 'ctl', [CompletionResultType]::ParameterValue, 'Give a running server an operator command through its control socket')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tchat;serve' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0, ::, 127.0.0.1)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'TCP port to listen on; 0 picks a free port (the console prints the real one)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'TCP port to listen on; 0 picks a free port (the console prints the real one)')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Append every event to FILE as JSON Lines (never truncates)')
            [CompletionResult]::new('--private-text', '--private-text', [CompletionResultType]::ParameterName, 'What the console and the --save log keep of private messages (/msg, /reply): "omit" keeps who, to whom, when and how long, never the text, for a server that promises privacy (a restart never replays private messages either way)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color the console output')
            [CompletionResult]::new('--max-line', '--max-line', [CompletionResultType]::ParameterName, 'Longest accepted input line in bytes; longer lines are rejected with an error')
            [CompletionResult]::new('--max-clients', '--max-clients', [CompletionResultType]::ParameterName, 'Most clients connected at once (at least 1); further connections are refused')
            [CompletionResult]::new('--max-per-ip', '--max-per-ip', [CompletionResultType]::ParameterName, 'Most connections from one IPv4 address or IPv6 /64 network; 0 means no limit')
            [CompletionResult]::new('--max-per-ip-exempt', '--max-per-ip-exempt', [CompletionResultType]::ParameterName, 'Networks --max-per-ip does not limit, as comma-separated CIDRs (a bare address is one host); replaces the default, loopback; "none" exempts nothing')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Sustained lines per second allowed from one client; 0 disables flood control')
            [CompletionResult]::new('--burst', '--burst', [CompletionResultType]::ParameterName, 'Lines a client may send in a burst before the rate applies; beyond it, lines are delayed to the rate, not dropped')
            [CompletionResult]::new('--flood-kick-after', '--flood-kick-after', [CompletionResultType]::ParameterName, 'Ignored: a client over the rate is slowed, never disconnected for it. Still accepted, with a warning, so that command lines written for older versions start')
            [CompletionResult]::new('--send-queue', '--send-queue', [CompletionResultType]::ParameterName, 'Bytes queued for a client that does not read before it is disconnected')
            [CompletionResult]::new('--announce-limit', '--announce-limit', [CompletionResultType]::ParameterName, 'Announce joins and leaves only while at most N users are online; 0 means always')
            [CompletionResult]::new('--default-room', '--default-room', [CompletionResultType]::ParameterName, 'Room every connection starts in and /part returns to: ''#'' and 1 to 32 characters')
            [CompletionResult]::new('--max-rooms', '--max-rooms', [CompletionResultType]::ParameterName, 'Most rooms at once, the default room included (2 allows one room besides it)')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Server name shown in the welcome message')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'TLS certificate chain (PEM, leaf first), reloaded when the file changes (checked every 2 s) or on SIGHUP')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'Private key (PEM) of --tls-cert')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the generated TLS key and certificate and the console''s history live [default: $XDG_STATE_HOME/tchat or ~/.local/state/tchat]')
            [CompletionResult]::new('--plaintext', '--plaintext', [CompletionResultType]::ParameterName, 'Accept typed-line (non-TLS) connections from anywhere, only from loopback, or never')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Require the password on the first line of FILE from every client (/pass PASSWORD)')
            [CompletionResult]::new('--password-timeout', '--password-timeout', [CompletionResultType]::ParameterName, 'With --password-file: close a connection that has not given the password this many seconds after connecting')
            [CompletionResult]::new('--bans', '--bans', [CompletionResultType]::ParameterName, 'Keep the ban list in FILE (JSON Lines, rewritten atomically on every change)')
            [CompletionResult]::new('--motd', '--motd', [CompletionResultType]::ParameterName, 'Message of the day (16 KiB at most): sent to everyone who joins, re-read on reload')
            [CompletionResult]::new('--oper-password-file', '--oper-password-file', [CompletionResultType]::ParameterName, 'Operator password (the file''s first line) for /oper; without it, no operators in chat')
            [CompletionResult]::new('--accounts', '--accounts', [CompletionResultType]::ParameterName, 'Keep registered nicks (/register) in FILE (JSON Lines, 0600, rewritten atomically) [default: accounts.jsonl in the state directory]')
            [CompletionResult]::new('--account-expiry', '--account-expiry', [CompletionResultType]::ParameterName, 'Release a registered nick its owner has not used for this long (90d, 52w), or never')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket for tchat ctl [default: $RUNTIME_DIRECTORY/control.sock, else $XDG_RUNTIME_DIR/tchat/control.sock]')
            [CompletionResult]::new('--history', '--history', [CompletionResultType]::ParameterName, 'Recent conversation events kept in memory per room, and as many private messages (reloaded from --save on start), for replay, /history and resuming; 0 keeps none')
            [CompletionResult]::new('--replay', '--replay', [CompletionResultType]::ParameterName, 'Lines, actions and topics of the room a joining client gets before the live stream, marked as history (not joins or leaves)')
            [CompletionResult]::new('--resume-grace', '--resume-grace', [CompletionResultType]::ParameterName, 'Seconds a structured client''s lost connection keeps its nick, unannounced, for it to resume; 0 announces the leave at once')
            [CompletionResult]::new('--backbone', '--backbone', [CompletionResultType]::ParameterName, 'Share one chat with the other tchat nodes on this NATS JetStream system: one or more servers of it, comma-separated (nats://HOST:PORT, tls://HOST:PORT); without it, this process is the whole chat')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'This node''s name on the backbone, unique among its nodes [default: HOST-PID]')
            [CompletionResult]::new('--backbone-auth', '--backbone-auth', [CompletionResultType]::ParameterName, 'File with the secret for the backbone (user and password, token, NKey seed, or a NATS credentials file), so that none is on the command line')
            [CompletionResult]::new('--backbone-ca', '--backbone-ca', [CompletionResultType]::ParameterName, 'CA certificate (PEM) the backbone''s NATS servers are checked against; implies TLS')
            [CompletionResult]::new('--backbone-replicas', '--backbone-replicas', [CompletionResultType]::ParameterName, 'Copies of the backbone''s stream and buckets: 3 on a 3-server NATS cluster (survives one server''s loss), 1 on a single server. Without it, a node makes them with 1 and leaves those it finds as they are; with it, it changes those it finds')
            [CompletionResult]::new('--backbone-persist', '--backbone-persist', [CompletionResultType]::ParameterName, 'Seconds a line waits for the backbone (away, or not confirming it) before its sender is told it was not delivered; a line not yet handed to NATS is then dropped and never shows. At most 110, inside the stream''s 120 s duplicate window')
            [CompletionResult]::new('--fingerprint', '--fingerprint', [CompletionResultType]::ParameterName, 'Print the TLS certificate''s SHA-256 fingerprint and exit (generating the certificate if needed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tchat;join' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Server to connect to, as an option (same forms as HOST)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Server port, unless HOST names one')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Server port, unless HOST names one')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Nickname to ask for (otherwise the server assigns a guest name)')
            [CompletionResult]::new('--nick', '--nick', [CompletionResultType]::ParameterName, 'Nickname to ask for (otherwise the server assigns a guest name)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color the output')
            [CompletionResult]::new('--fingerprint', '--fingerprint', [CompletionResultType]::ParameterName, 'Trust the server''s certificate if it has this fingerprint (SHA256:..., from the operator)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Send the server password from the first line of FILE')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Your identity: a PEM file with a certificate and its private key, presented over TLS to prove your registered nicks (made on first use) [default: identity.pem in $XDG_STATE_HOME/tchat or ~/.local/state/tchat]')
            [CompletionResult]::new('--no-history', '--no-history', [CompletionResultType]::ParameterName, 'Do not read or write the input history file')
            [CompletionResult]::new('--no-replay', '--no-replay', [CompletionResultType]::ParameterName, 'Ask the server not to replay a room''s recent lines on joining it and on /join (for scripts and bots: only live lines); /history still works')
            [CompletionResult]::new('--no-bell', '--no-bell', [CompletionResultType]::ParameterName, 'Keep the terminal bell quiet for this run, whatever the /bell setting, until /bell sets it')
            [CompletionResult]::new('--plain', '--plain', [CompletionResultType]::ParameterName, 'Connect without TLS (to an older server, or on a trusted network)')
            [CompletionResult]::new('--no-reconnect', '--no-reconnect', [CompletionResultType]::ParameterName, 'Exit when the connection is lost instead of reconnecting (interactive mode reconnects by default)')
            [CompletionResult]::new('--reconnect', '--reconnect', [CompletionResultType]::ParameterName, 'Reconnect and resume after a lost connection also when input is piped (a script)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'tchat;ctl' {
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'The server''s control socket [default: as for tchat serve, else /run/tchat/control.sock]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'tchat;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the chat server')
            [CompletionResult]::new('join', 'join', [CompletionResultType]::ParameterValue, 'Join a chat server with the interactive terminal client')
            [CompletionResult]::new('ctl', 'ctl', [CompletionResultType]::ParameterValue, 'Give a running server an operator command through its control socket')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tchat;help;serve' {
            break
        }
        'tchat;help;join' {
            break
        }
        'tchat;help;ctl' {
            break
        }
        'tchat;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
