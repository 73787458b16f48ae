using System.IO.Pipelines;
using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

/// <summary>
/// The scheduler of the send loops (the output pipes' reader) under inline scheduling. While a receive loop hands a
/// batch to its protocol (<see cref="Enter"/> … <see cref="Exit"/> around the input flush, in which the protocol runs
/// inline on this thread), a send loop that a flush wakes is resumed only when that hand-over returns: everything the
/// protocol wrote in answer to one receive batch, over any number of flushes (one per TLS record, one per pipelined
/// response), leaves in one send instead of one per flush. Anywhere else it runs the send loop inline, as
/// <see cref="PipeScheduler.Inline"/> does. No thread hop and no allocation in either case.
/// </summary>
internal sealed class SendBatchScheduler : PipeScheduler
{
    public static readonly SendBatchScheduler Instance = new();

    [ThreadStatic]
    private static Batch? t_batch;

    private SendBatchScheduler()
    {
    }

    public override void Schedule(Action<object?> action, object? state)
    {
        Batch? batch = t_batch;
        if (batch is { Depth: > 0 })
        {
            batch.Pending.Add((action, state));
            return;
        }

        action(state);
    }

    /// <summary>Starts holding back send loops that this thread wakes; pair with <see cref="Exit"/> in a finally.</summary>
    public static void Enter()
    {
        Batch batch = t_batch ??= new Batch();
        batch.Depth++;
    }

    /// <summary>
    /// Ends what <see cref="Enter"/> started; the outermost one resumes the send loops held back, in the order they were
    /// woken. Never throws: a fault in one is logged and the others still run.
    /// </summary>
    public static void Exit(ILogger logger)
    {
        Batch batch = t_batch!;
        if (--batch.Depth > 0 || batch.Pending.Count == 0)
        {
            return;
        }

        // A send loop resumed here can wake a receive loop that enters and exits on this thread again: that one
        // collects into a fresh list instead of the one being walked.
        List<(Action<object?> Action, object? State)> run = batch.Pending;
        batch.Pending = batch.Spare ?? [];
        batch.Spare = null;
        for (int i = 0; i < run.Count; i++)
        {
            (Action<object?> action, object? state) = run[i];
            try
            {
                action(state);
            }
            catch (Exception ex)
            {
                SocketsLog.DeferredSendFailed(logger, ex);
            }
        }

        run.Clear();
        batch.Spare ??= run;
    }

    private sealed class Batch
    {
        public int Depth;
        public List<(Action<object?> Action, object? State)> Pending = [];
        public List<(Action<object?> Action, object? State)>? Spare;
    }
}
