
use builtin;
use str;

set edit:completion:arg-completer[tchat] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'tchat'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'tchat'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the chat server'
            cand join 'Join a chat server with the interactive terminal client'
            cand ctl 'Give a running server an operator command through its control socket'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tchat;serve'= {
            cand --host 'Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0, ::, 127.0.0.1)'
            cand -p 'TCP port to listen on; 0 picks a free port (the console prints the real one)'
            cand --port 'TCP port to listen on; 0 picks a free port (the console prints the real one)'
            cand --save 'Append every event to FILE as JSON Lines (never truncates)'
            cand --private-text 'What the console and the --save log keep of private messages (/msg, /reply): "omit" keeps who, to whom, when and how long, never the text, for a server that promises privacy (a restart never replays private messages either way)'
            cand --color 'Color the console output'
            cand --max-line 'Longest accepted input line in bytes; longer lines are rejected with an error'
            cand --max-clients 'Most clients connected at once (at least 1); further connections are refused'
            cand --max-per-ip 'Most connections from one IPv4 address or IPv6 /64 network; 0 means no limit'
            cand --max-per-ip-exempt 'Networks --max-per-ip does not limit, as comma-separated CIDRs (a bare address is one host); replaces the default, loopback; "none" exempts nothing'
            cand --rate 'Sustained lines per second allowed from one client; 0 disables flood control'
            cand --burst 'Lines a client may send in a burst before the rate applies; beyond it, lines are delayed to the rate, not dropped'
            cand --flood-kick-after 'Ignored: a client over the rate is slowed, never disconnected for it. Still accepted, with a warning, so that command lines written for older versions start'
            cand --send-queue 'Bytes queued for a client that does not read before it is disconnected'
            cand --announce-limit 'Announce joins and leaves only while at most N users are online; 0 means always'
            cand --default-room 'Room every connection starts in and /part returns to: ''#'' and 1 to 32 characters'
            cand --max-rooms 'Most rooms at once, the default room included (2 allows one room besides it)'
            cand --name 'Server name shown in the welcome message'
            cand --tls-cert 'TLS certificate chain (PEM, leaf first), reloaded when the file changes (checked every 2 s) or on SIGHUP'
            cand --tls-key 'Private key (PEM) of --tls-cert'
            cand --state-dir 'Where the generated TLS key and certificate and the console''s history live [default: $XDG_STATE_HOME/tchat or ~/.local/state/tchat]'
            cand --plaintext 'Accept typed-line (non-TLS) connections from anywhere, only from loopback, or never'
            cand --password-file 'Require the password on the first line of FILE from every client (/pass PASSWORD)'
            cand --password-timeout 'With --password-file: close a connection that has not given the password this many seconds after connecting'
            cand --bans 'Keep the ban list in FILE (JSON Lines, rewritten atomically on every change)'
            cand --motd 'Message of the day (16 KiB at most): sent to everyone who joins, re-read on reload'
            cand --oper-password-file 'Operator password (the file''s first line) for /oper; without it, no operators in chat'
            cand --accounts 'Keep registered nicks (/register) in FILE (JSON Lines, 0600, rewritten atomically) [default: accounts.jsonl in the state directory]'
            cand --account-expiry 'Release a registered nick its owner has not used for this long (90d, 52w), or never'
            cand --control-socket 'Control socket for tchat ctl [default: $RUNTIME_DIRECTORY/control.sock, else $XDG_RUNTIME_DIR/tchat/control.sock]'
            cand --history 'Recent conversation events kept in memory per room, and as many private messages (reloaded from --save on start), for replay, /history and resuming; 0 keeps none'
            cand --replay 'Lines, actions and topics of the room a joining client gets before the live stream, marked as history (not joins or leaves)'
            cand --resume-grace 'Seconds a structured client''s lost connection keeps its nick, unannounced, for it to resume; 0 announces the leave at once'
            cand --backbone 'Share one chat with the other tchat nodes on this NATS JetStream system: one or more servers of it, comma-separated (nats://HOST:PORT, tls://HOST:PORT); without it, this process is the whole chat'
            cand --node 'This node''s name on the backbone, unique among its nodes [default: HOST-PID]'
            cand --backbone-auth 'File with the secret for the backbone (user and password, token, NKey seed, or a NATS credentials file), so that none is on the command line'
            cand --backbone-ca 'CA certificate (PEM) the backbone''s NATS servers are checked against; implies TLS'
            cand --backbone-replicas 'Copies of the backbone''s stream and buckets: 3 on a 3-server NATS cluster (survives one server''s loss), 1 on a single server. Without it, a node makes them with 1 and leaves those it finds as they are; with it, it changes those it finds'
            cand --backbone-persist 'Seconds a line waits for the backbone (away, or not confirming it) before its sender is told it was not delivered; a line not yet handed to NATS is then dropped and never shows. At most 110, inside the stream''s 120 s duplicate window'
            cand --fingerprint 'Print the TLS certificate''s SHA-256 fingerprint and exit (generating the certificate if needed)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tchat;join'= {
            cand --host 'Server to connect to, as an option (same forms as HOST)'
            cand -p 'Server port, unless HOST names one'
            cand --port 'Server port, unless HOST names one'
            cand -n 'Nickname to ask for (otherwise the server assigns a guest name)'
            cand --nick 'Nickname to ask for (otherwise the server assigns a guest name)'
            cand --color 'Color the output'
            cand --fingerprint 'Trust the server''s certificate if it has this fingerprint (SHA256:..., from the operator)'
            cand --password-file 'Send the server password from the first line of FILE'
            cand --identity 'Your identity: a PEM file with a certificate and its private key, presented over TLS to prove your registered nicks (made on first use) [default: identity.pem in $XDG_STATE_HOME/tchat or ~/.local/state/tchat]'
            cand --no-history 'Do not read or write the input history file'
            cand --no-replay 'Ask the server not to replay a room''s recent lines on joining it and on /join (for scripts and bots: only live lines); /history still works'
            cand --no-bell 'Keep the terminal bell quiet for this run, whatever the /bell setting, until /bell sets it'
            cand --plain 'Connect without TLS (to an older server, or on a trusted network)'
            cand --no-reconnect 'Exit when the connection is lost instead of reconnecting (interactive mode reconnects by default)'
            cand --reconnect 'Reconnect and resume after a lost connection also when input is piped (a script)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'tchat;ctl'= {
            cand --control-socket 'The server''s control socket [default: as for tchat serve, else /run/tchat/control.sock]'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'tchat;help'= {
            cand serve 'Run the chat server'
            cand join 'Join a chat server with the interactive terminal client'
            cand ctl 'Give a running server an operator command through its control socket'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tchat;help;serve'= {
        }
        &'tchat;help;join'= {
        }
        &'tchat;help;ctl'= {
        }
        &'tchat;help;help'= {
        }
    ]
    $completions[$command]
}
