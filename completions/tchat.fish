# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tchat_global_optspecs
    string join \n h/help V/version
end

function __fish_tchat_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tchat_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tchat_using_subcommand
    set -l cmd (__fish_tchat_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tchat -n "__fish_tchat_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tchat -n "__fish_tchat_needs_command" -s V -l version -d 'Print version'
complete -c tchat -n "__fish_tchat_needs_command" -f -a "serve" -d 'Run the chat server'
complete -c tchat -n "__fish_tchat_needs_command" -f -a "join" -d 'Join a chat server with the interactive terminal client'
complete -c tchat -n "__fish_tchat_needs_command" -f -a "ctl" -d 'Give a running server an operator command through its control socket'
complete -c tchat -n "__fish_tchat_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l host -d 'Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0, ::, 127.0.0.1)' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -s p -l port -d 'TCP port to listen on; 0 picks a free port (the console prints the real one)' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l save -d 'Append every event to FILE as JSON Lines (never truncates)' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l private-text -d 'What the console and the --save log keep of private messages (/msg, /reply): "omit" keeps who, to whom, when and how long, never the text, for a server that promises privacy (a restart never replays private messages either way)' -r -f -a "log\t'Its text too (a preview on the console), as for a public line'
omit\t'Only who sent it to whom, when, its length and its id: never its text'"
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l color -d 'Color the console output' -r -f -a "auto\t'Color when writing to a terminal and NO_COLOR is not set'
always\t'Always color'
never\t'Never color'"
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l max-line -d 'Longest accepted input line in bytes; longer lines are rejected with an error' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l max-clients -d 'Most clients connected at once (at least 1); further connections are refused' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l max-per-ip -d 'Most connections from one IPv4 address or IPv6 /64 network; 0 means no limit' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l max-per-ip-exempt -d 'Networks --max-per-ip does not limit, as comma-separated CIDRs (a bare address is one host); replaces the default, loopback; "none" exempts nothing' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l rate -d 'Sustained lines per second allowed from one client; 0 disables flood control' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l burst -d 'Lines a client may send in a burst before the rate applies; beyond it, lines are delayed to the rate, not dropped' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l flood-kick-after -d 'Ignored: a client over the rate is slowed, never disconnected for it. Still accepted, with a warning, so that command lines written for older versions start' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l send-queue -d 'Bytes queued for a client that does not read before it is disconnected' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l announce-limit -d 'Announce joins and leaves only while at most N users are online; 0 means always' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l default-room -d 'Room every connection starts in and /part returns to: \'#\' and 1 to 32 characters' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l max-rooms -d 'Most rooms at once, the default room included (2 allows one room besides it)' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l name -d 'Server name shown in the welcome message' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l tls-cert -d 'TLS certificate chain (PEM, leaf first), reloaded when the file changes (checked every 2 s) or on SIGHUP' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l tls-key -d 'Private key (PEM) of --tls-cert' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l state-dir -d 'Where the generated TLS key and certificate and the console\'s history live [default: $XDG_STATE_HOME/tchat or ~/.local/state/tchat]' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l plaintext -d 'Accept typed-line (non-TLS) connections from anywhere, only from loopback, or never' -r -f -a "allow\t'From anywhere (nc HOST 5555 works)'
loopback\t'Only from the loopback address (nc on the server\'s own machine)'
deny\t'Never: TLS only'"
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l password-file -d 'Require the password on the first line of FILE from every client (/pass PASSWORD)' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l password-timeout -d 'With --password-file: close a connection that has not given the password this many seconds after connecting' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l bans -d 'Keep the ban list in FILE (JSON Lines, rewritten atomically on every change)' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l motd -d 'Message of the day (16 KiB at most): sent to everyone who joins, re-read on reload' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l oper-password-file -d 'Operator password (the file\'s first line) for /oper; without it, no operators in chat' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l accounts -d 'Keep registered nicks (/register) in FILE (JSON Lines, 0600, rewritten atomically) [default: accounts.jsonl in the state directory]' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l account-expiry -d 'Release a registered nick its owner has not used for this long (90d, 52w), or never' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l control-socket -d 'Control socket for tchat ctl [default: $RUNTIME_DIRECTORY/control.sock, else $XDG_RUNTIME_DIR/tchat/control.sock]' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l history -d 'Recent conversation events kept in memory per room, and as many private messages (reloaded from --save on start), for replay, /history and resuming; 0 keeps none' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l replay -d 'Lines, actions and topics of the room a joining client gets before the live stream, marked as history (not joins or leaves)' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l resume-grace -d 'Seconds a structured client\'s lost connection keeps its nick, unannounced, for it to resume; 0 announces the leave at once' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l backbone -d 'Share one chat with the other tchat nodes on this NATS JetStream system: one or more servers of it, comma-separated (nats://HOST:PORT, tls://HOST:PORT); without it, this process is the whole chat' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l node -d 'This node\'s name on the backbone, unique among its nodes [default: HOST-PID]' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l backbone-auth -d 'File with the secret for the backbone (user and password, token, NKey seed, or a NATS credentials file), so that none is on the command line' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l backbone-ca -d 'CA certificate (PEM) the backbone\'s NATS servers are checked against; implies TLS' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l backbone-replicas -d 'Copies of the backbone\'s stream and buckets: 3 on a 3-server NATS cluster (survives one server\'s loss), 1 on a single server. Without it, a node makes them with 1 and leaves those it finds as they are; with it, it changes those it finds' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l backbone-persist -d 'Seconds a line waits for the backbone (away, or not confirming it) before its sender is told it was not delivered; a line not yet handed to NATS is then dropped and never shows. At most 110, inside the stream\'s 120 s duplicate window' -r
complete -c tchat -n "__fish_tchat_using_subcommand serve" -l fingerprint -d 'Print the TLS certificate\'s SHA-256 fingerprint and exit (generating the certificate if needed)'
complete -c tchat -n "__fish_tchat_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tchat -n "__fish_tchat_using_subcommand join" -l host -d 'Server to connect to, as an option (same forms as HOST)' -r
complete -c tchat -n "__fish_tchat_using_subcommand join" -s p -l port -d 'Server port, unless HOST names one' -r
complete -c tchat -n "__fish_tchat_using_subcommand join" -s n -l nick -d 'Nickname to ask for (otherwise the server assigns a guest name)' -r
complete -c tchat -n "__fish_tchat_using_subcommand join" -l color -d 'Color the output' -r -f -a "auto\t'Color when writing to a terminal and NO_COLOR is not set'
always\t'Always color'
never\t'Never color'"
complete -c tchat -n "__fish_tchat_using_subcommand join" -l fingerprint -d 'Trust the server\'s certificate if it has this fingerprint (SHA256:..., from the operator)' -r
complete -c tchat -n "__fish_tchat_using_subcommand join" -l password-file -d 'Send the server password from the first line of FILE' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand join" -l identity -d 'Your identity: a PEM file with a certificate and its private key, presented over TLS to prove your registered nicks (made on first use) [default: identity.pem in $XDG_STATE_HOME/tchat or ~/.local/state/tchat]' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand join" -l no-history -d 'Do not read or write the input history file'
complete -c tchat -n "__fish_tchat_using_subcommand join" -l no-replay -d 'Ask the server not to replay a room\'s recent lines on joining it and on /join (for scripts and bots: only live lines); /history still works'
complete -c tchat -n "__fish_tchat_using_subcommand join" -l no-bell -d 'Keep the terminal bell quiet for this run, whatever the /bell setting, until /bell sets it'
complete -c tchat -n "__fish_tchat_using_subcommand join" -l plain -d 'Connect without TLS (to an older server, or on a trusted network)'
complete -c tchat -n "__fish_tchat_using_subcommand join" -l no-reconnect -d 'Exit when the connection is lost instead of reconnecting (interactive mode reconnects by default)'
complete -c tchat -n "__fish_tchat_using_subcommand join" -l reconnect -d 'Reconnect and resume after a lost connection also when input is piped (a script)'
complete -c tchat -n "__fish_tchat_using_subcommand join" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tchat -n "__fish_tchat_using_subcommand ctl" -l control-socket -d 'The server\'s control socket [default: as for tchat serve, else /run/tchat/control.sock]' -r -F
complete -c tchat -n "__fish_tchat_using_subcommand ctl" -s h -l help -d 'Print help'
complete -c tchat -n "__fish_tchat_using_subcommand help; and not __fish_seen_subcommand_from serve join ctl help" -f -a "serve" -d 'Run the chat server'
complete -c tchat -n "__fish_tchat_using_subcommand help; and not __fish_seen_subcommand_from serve join ctl help" -f -a "join" -d 'Join a chat server with the interactive terminal client'
complete -c tchat -n "__fish_tchat_using_subcommand help; and not __fish_seen_subcommand_from serve join ctl help" -f -a "ctl" -d 'Give a running server an operator command through its control socket'
complete -c tchat -n "__fish_tchat_using_subcommand help; and not __fish_seen_subcommand_from serve join ctl help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
