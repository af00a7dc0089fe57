using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy in front of a real server (127.0.0.1, an ephemeral port) that breaks the connections on
/// command: <see cref="DropAll"/> resets every connection now, <see cref="RefuseFor"/> stops accepting (clients get
/// "connection refused") for a while, and an armed <see cref="ProxyFault"/> cuts a connection after a number of bytes
/// or when the client sends a given statement — before it reaches the server, or after the server answered but before
/// the client heard the answer. Connections are cut with a TCP reset, as a crashed peer or a middlebox would.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly ConcurrentDictionary<int, Pair> _pairs = new();
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _disposed = new();
    private Socket? _listener;
    private int _nextPair;
    private Armed? _armed;
    private CancellationTokenSource? _reopen;
    private long _toServer;
    private long _toClient;
    private int _accepted;

    private FaultProxy(IPEndPoint target)
    {
        _target = target;
        Listen(0);
    }

    /// <summary>The port clients connect to.</summary>
    public int Port { get; private set; }

    public long BytesToServer => Interlocked.Read(ref _toServer);

    public long BytesToClient => Interlocked.Read(ref _toClient);

    public int ConnectionsAccepted => Volatile.Read(ref _accepted);

    public int OpenConnections => _pairs.Count;

    /// <summary>Whether new connections are refused right now.</summary>
    public bool Refusing
    {
        get
        {
            lock (_gate)
            {
                return _listener is null;
            }
        }
    }

    public static FaultProxy Start(string host, int port) => new(new IPEndPoint(IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host), port));

    /// <summary>Resets every open connection now.</summary>
    public void DropAll()
    {
        foreach (var pair in _pairs.Values)
        {
            pair.Reset();
        }
    }

    /// <summary>
    /// Drops every connection and refuses new ones for <paramref name="duration"/> (until <see cref="AcceptAgain"/> when
    /// sooner). The returned task completes when connections are accepted again.
    /// </summary>
    public Task RefuseFor(TimeSpan duration)
    {
        var reopen = new CancellationTokenSource();
        CancellationTokenSource? previous;
        lock (_gate)
        {
            previous = _reopen;
            _reopen = reopen;
            _listener?.Dispose();
            _listener = null;
        }

        previous?.Cancel();
        DropAll();
        return Task.Run(async () =>
        {
            try
            {
                await Task.Delay(duration, reopen.Token);
            }
            catch (OperationCanceledException)
            {
                // Reopened early, or refused again with a new duration.
            }

            lock (_gate)
            {
                if (!ReferenceEquals(_reopen, reopen))
                {
                    return;
                }
            }

            AcceptAgain();
        });
    }

    /// <summary>Accepts connections again (ends a <see cref="RefuseFor"/> early).</summary>
    public void AcceptAgain()
    {
        CancellationTokenSource? pending;
        lock (_gate)
        {
            pending = _reopen;
            _reopen = null;
            if (_listener is null && !_disposed.IsCancellationRequested)
            {
                Listen(Port);
            }
        }

        pending?.Cancel();
    }

    /// <summary>Arms one fault (replacing any armed one). The task completes, with what was done, when it fires.</summary>
    public Task<string> Arm(ProxyFault fault)
    {
        var armed = new Armed(fault);
        lock (_gate)
        {
            _armed?.Fired.TrySetCanceled();
            _armed = armed;
        }

        return armed.Fired.Task;
    }

    /// <summary>Disarms the armed fault, if it has not fired.</summary>
    public void Disarm()
    {
        lock (_gate)
        {
            _armed?.Fired.TrySetCanceled();
            _armed = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync();
        lock (_gate)
        {
            _listener?.Dispose();
            _listener = null;
        }

        DropAll();
        Disarm();
        _disposed.Dispose();
    }

    private void Listen(int port)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        // Rebinding the same port after a refusal must not wait for connections in TIME_WAIT.
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listener.Listen(128);
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        _listener = listener;
        _ = AcceptLoopAsync(listener);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_disposed.Token);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return; // refused from now on, or disposed
            }

            Interlocked.Increment(ref _accepted);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await server.ConnectAsync(_target, _disposed.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            Pair.ResetSocket(client);
            server.Dispose();
            return;
        }

        client.NoDelay = true;
        server.NoDelay = true;
        var pair = new Pair(Interlocked.Increment(ref _nextPair), client, server);
        _pairs[pair.Id] = pair;
        try
        {
            await Task.WhenAll(PumpToServerAsync(pair), PumpToClientAsync(pair));
        }
        finally
        {
            _pairs.TryRemove(pair.Id, out _);
            pair.Reset();
        }
    }

    private async Task PumpToServerAsync(Pair pair)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await pair.Client.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    pair.Server.Shutdown(SocketShutdown.Send);
                    return;
                }

                var (forward, after) = Inspect(pair, buffer.AsSpan(0, read));
                if (forward > 0)
                {
                    await SendAllAsync(pair.Server, buffer.AsMemory(0, forward));
                    Interlocked.Add(ref _toServer, forward);
                }

                if (after is not null)
                {
                    after();
                    return;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            pair.Reset();
        }
    }

    private async Task PumpToClientAsync(Pair pair)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await pair.Server.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    pair.Client.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (pair.SwallowReply is { } swallowed)
                {
                    // The server has answered the statement: it is done (committed, for an autocommit statement), and
                    // the client will never know.
                    pair.Reset();
                    swallowed();
                    return;
                }

                await SendAllAsync(pair.Client, buffer.AsMemory(0, read));
                Interlocked.Add(ref _toClient, read);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            pair.Reset();
        }
    }

    /// <summary>How many bytes of a client chunk to forward, and what to do after forwarding them (null: carry on).</summary>
    private (int Forward, Action? After) Inspect(Pair pair, ReadOnlySpan<byte> chunk)
    {
        lock (_gate)
        {
            var armed = _armed;
            if (armed is null)
            {
                return (chunk.Length, null);
            }

            var fault = armed.Fault;
            if (fault.CutAfterBytes is { } limit)
            {
                armed.Counted += chunk.Length;
                if (armed.Counted <= limit)
                {
                    return (chunk.Length, null);
                }

                _armed = null;
                var forward = chunk.Length - (int)(armed.Counted - limit);
                return (forward, () =>
                {
                    pair.Reset();
                    armed.Fired.TrySetResult($"connection {pair.Id} reset after {limit} bytes to the server");
                });
            }

            if (fault.Statement is null || chunk.IndexOf(fault.StatementBytes) < 0 || ++armed.Counted < fault.Occurrence)
            {
                return (chunk.Length, null);
            }

            _armed = null;
            switch (fault.Action)
            {
                case ProxyFaultAction.CutBeforeServer:
                    return (0, () =>
                    {
                        pair.Reset();
                        armed.Fired.TrySetResult($"connection {pair.Id} reset before statement #{fault.Occurrence} reached the server");
                    });
                case ProxyFaultAction.CutAfterServerAnswered:
                    pair.SwallowReply = () => armed.Fired.TrySetResult($"connection {pair.Id} reset after the server answered statement #{fault.Occurrence}");
                    return (chunk.Length, null);
                default:
                    return (0, () =>
                    {
                        _ = RefuseFor(fault.RefuseFor);
                        armed.Fired.TrySetResult($"all connections dropped at statement #{fault.Occurrence}; new ones refused for {fault.RefuseFor.TotalSeconds:0.#} s");
                    });
            }
        }
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None);
            data = data[sent..];
        }
    }

    private sealed class Armed(ProxyFault fault)
    {
        public ProxyFault Fault { get; } = fault;

        public long Counted { get; set; }

        public TaskCompletionSource<string> Fired { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Pair(int id, Socket client, Socket server)
    {
        private int _reset;

        public int Id { get; } = id;

        public Socket Client { get; } = client;

        public Socket Server { get; } = server;

        /// <summary>Set when the next answer from the server is to be swallowed and the connection reset.</summary>
        public Action? SwallowReply { get; set; }

        public static void ResetSocket(Socket socket)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0); // close with RST, not FIN
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }

            socket.Dispose();
        }

        public void Reset()
        {
            if (Interlocked.Exchange(ref _reset, 1) == 0)
            {
                ResetSocket(Client);
                ResetSocket(Server);
            }
        }
    }
}

/// <summary>What an armed <see cref="ProxyFault"/> does when its statement is seen.</summary>
internal enum ProxyFaultAction
{
    /// <summary>Reset the connection; the statement never reaches the server.</summary>
    CutBeforeServer,

    /// <summary>Forward the statement, let the server answer (and commit), reset before the client gets the answer.</summary>
    CutAfterServerAnswered,

    /// <summary>Drop every connection and refuse new ones for <see cref="ProxyFault.RefuseFor"/>.</summary>
    DropAllAndRefuse,
}

/// <summary>
/// A one-shot fault: either cut the connection that carries byte <see cref="CutAfterBytes"/>+1 sent to the server
/// (counted from arming, over all connections), or act on the <see cref="Occurrence"/>-th client message containing
/// <see cref="Statement"/> (PostgreSQL's extended protocol sends the SQL text in every Parse message).
/// </summary>
internal sealed record ProxyFault
{
    public long? CutAfterBytes { get; init; }

    public string? Statement { get; init; }

    public int Occurrence { get; init; } = 1;

    public ProxyFaultAction Action { get; init; }

    public TimeSpan RefuseFor { get; init; }

    public byte[] StatementBytes => Encoding.UTF8.GetBytes(Statement ?? "");

    public static ProxyFault AfterBytes(long bytes) => new() { CutAfterBytes = bytes };

    public static ProxyFault OnStatement(string statement, int occurrence, ProxyFaultAction action, TimeSpan refuseFor = default) =>
        new() { Statement = statement, Occurrence = occurrence, Action = action, RefuseFor = refuseFor };
}
