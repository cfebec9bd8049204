using Posteriors.Continual;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>A way of learning the tasks in sequence, keeping whatever it carries from one task to the next.</summary>
internal abstract class ContinualMethod
{
    public abstract string Name { get; }

    /// <summary>The parameters used for prediction (the posterior mean for Gaussian methods).</summary>
    public abstract ParameterTree PredictiveMean { get; }

    public abstract void Reset(ParameterTree initial);

    public abstract void Learn(SplitTask task, Generator generator, Action onStep);

    public abstract void Save(string path);

    public abstract void Load(string path, Device device);
}

internal static class FashionMnistMethods
{
    public static IReadOnlyList<ContinualMethod> All(SplitFashionMnist.Settings settings) => new ContinualMethod[]
    {
        new SgdFineTuning(settings),
    };
}

/// <summary>Plain fine-tuning: MAP with SGD on each task in turn under a fixed N(0, 1) prior; the baseline that forgets.</summary>
internal sealed class SgdFineTuning(SplitFashionMnist.Settings settings) : ContinualMethod
{
    private ParameterTree _mean = null!;

    public override string Name => "SGD";

    public override ParameterTree PredictiveMean => _mean;

    public override void Reset(ParameterTree initial) => _mean = initial.Clone();

    public override void Learn(SplitTask task, Generator generator, Action onStep) =>
        _mean = SplitFashionMnist.Fit(_mean, task, SplitFashionMnist.StandardNormalLogPrior, settings, generator, onStep);

    public override void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        StateFile.Save(path, new ParameterSnapshot(_mean));
    }

    public override void Load(string path, Device device) => _mean = StateFile.Load<ParameterSnapshot>(path, device).Parameters;
}
