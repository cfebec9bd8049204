using Posteriors.Continual;
using Posteriors.Optim;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>One two-class task of Split Fashion-MNIST: its classes and its own train/test images.</summary>
internal sealed record SplitTask(int Index, long[] Classes, Tensor TrainX, Tensor TrainY, Tensor TestX, Tensor TestY)
{
    public string Name => $"{Classes[0]}/{Classes[1]}";
    public long TrainCount => TrainX.shape[0];
}

/// <summary>
/// Split Fashion-MNIST (task-incremental): five tasks {0,1}, {2,3}, …, {8,9} learned in sequence by one MLP with a
/// ten-way head; each task is trained and evaluated on the two logits of its own classes (labels 0/1 within a task).
/// </summary>
internal static class SplitFashionMnist
{
    public static IReadOnlyList<SplitTask> Tasks((Tensor Images, Tensor Labels) train, (Tensor Images, Tensor Labels) test,
        int trainPerTask, int testPerTask, Device device)
    {
        SplitTask Make(int t)
        {
            long[] classes = { 2 * t, 2 * t + 1 };
            (Tensor X, Tensor Y) Pick((Tensor Images, Tensor Labels) set, int limit)
            {
                var mask = set.Labels.eq(classes[0]).logical_or(set.Labels.eq(classes[1]));
                var idx = nonzero(mask).squeeze(1);
                if (idx.shape[0] > limit) idx = idx.narrow(0, 0, limit);
                var x = set.Images.index_select(0, idx).reshape(idx.shape[0], -1).to(ScalarType.Float32).to(device);
                var y = set.Labels.index_select(0, idx).eq(classes[1]).to(ScalarType.Int64).to(device);
                return (x, y);
            }
            var (trX, trY) = Pick(train, trainPerTask);
            var (teX, teY) = Pick(test, testPerTask);
            return new SplitTask(t, classes, trX, trY, teX, teY);
        }
        return Enumerable.Range(0, 5).Select(Make).ToArray();
    }

    /// <summary>
    /// A 784–hidden–10 ReLU MLP as a TorchSharp module (parameters fc1.weight, fc1.bias, fc2.weight, fc2.bias). Log densities
    /// bind the values they are given into it with <see cref="ModuleBinding"/>, so the curvature code takes its nn.Linear
    /// fast path (per-sample gradients from one backward pass).
    /// </summary>
    public static nn.Module<Tensor, Tensor> Mlp(int inputs, int hidden, long seed, Device device)
    {
        manual_seed(seed);
        var mlp = new TwoLayerMlp(inputs, hidden, 10);
        mlp.to(device);
        return mlp;
    }

    /// <summary>
    /// fc2(relu(fc1(x))). Not nn.Sequential: Sequential disposes its intermediate outputs, which the per-sample-gradient
    /// fast path records with forward hooks.
    /// </summary>
    private sealed class TwoLayerMlp : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc1;
        private readonly TorchSharp.Modules.Linear fc2;

        public TwoLayerMlp(int inputs, int hidden, int outputs) : base(nameof(TwoLayerMlp))
        {
            fc1 = nn.Linear(inputs, hidden);
            fc2 = nn.Linear(hidden, outputs);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc2.call(nn.functional.relu(fc1.call(x)));
    }

    /// <summary>The logits of the task's two classes, [n, 2], from the module as it is bound.</summary>
    public static Tensor TaskLogits(nn.Module<Tensor, Tensor> mlp, Tensor x, SplitTask task) =>
        mlp.call(x).index_select(1, tensor(task.Classes, device: x.device));

    /// <summary>log p(y | x, θ) per example for the task's two-class head, [n], with θ bound into the module (returned as Wrt).</summary>
    public static LogDensityResult LogLikelihoods(nn.Module<Tensor, Tensor> mlp, ParameterTree p, Tensor x, Tensor y, SplitTask task)
    {
        var wrt = ModuleBinding.Bind(mlp, p);
        return new LogDensityResult(TaskLogits(mlp, x, task).log_softmax(1).gather(1, y.unsqueeze(1)).squeeze(1), wrt: wrt);
    }

    /// <summary>
    /// log π(θ; batch) = mean log-likelihood of the task + log p(θ) / N, with the previous task's posterior as the prior
    /// (or N(0, 1) on the first task and for plain fine-tuning). The prior sees the module's bound parameters, so its
    /// gradient flows with the likelihood's.
    /// </summary>
    public static LogPosterior<(Tensor X, Tensor Y)> LogPosterior(nn.Module<Tensor, Tensor> mlp, SplitTask task, Func<ParameterTree, Tensor> logPrior) =>
        (p, batch) =>
        {
            var r = LogLikelihoods(mlp, p, batch.X, batch.Y, task);
            return new LogDensityResult(r.Value.mean() + logPrior(r.Wrt!) / task.TrainCount, wrt: r.Wrt);
        };

    public static Tensor StandardNormalLogPrior(ParameterTree p) => DiagNormal.LogProb(p, 0, 1, normalize: false);

    public static IEnumerable<(Tensor X, Tensor Y)> Batches(SplitTask task, int batchSize, int epochs, Generator g)
    {
        var n = task.TrainCount;
        for (var e = 0; e < epochs; e++)
        {
            var order = randperm(n, generator: g).to(task.TrainX.device);
            for (long s = 0; s + batchSize <= n; s += batchSize)
            {
                var idx = order.narrow(0, s, batchSize);
                yield return (task.TrainX.index_select(0, idx), task.TrainY.index_select(0, idx));
            }
        }
    }

    public static double Accuracy(nn.Module<Tensor, Tensor> mlp, ParameterTree p, SplitTask task)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        ModuleBinding.Bind(mlp, p);
        return TaskLogits(mlp, task.TestX, task).argmax(1).eq(task.TestY).to(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>MAP on one task with SGD with momentum through <see cref="TorchOptim"/>.</summary>
    public static ParameterTree Fit(nn.Module<Tensor, Tensor> mlp, ParameterTree start, SplitTask task, Func<ParameterTree, Tensor> logPrior, Settings s, Generator g, Action onStep)
    {
        var transform = TorchOptim.Build(LogPosterior(mlp, task, logPrior), ps => optim.SGD(ps, s.Lr, momentum: 0.9));
        var state = transform.Init(start);
        foreach (var batch in Batches(task, s.BatchSize, s.Epochs, g))
        {
            using var scope = NewDisposeScope();
            state = transform.Update(state, batch, inplace: true);
            onStep();
        }
        return state.Params.Clone();
    }

    internal sealed record Settings(int BatchSize, int Epochs, double Lr, double Lambda, double EkfLr, double ViLr);
}
