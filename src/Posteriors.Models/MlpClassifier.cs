using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Models;

/// <summary>A multilayer perceptron classifier: flatten → (dense → ReLU)×k → dense(classes).</summary>
public sealed class MlpClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Sequential layers;

    /// <summary>Creates the network.</summary>
    /// <param name="inputs">Number of input features (after flattening).</param>
    /// <param name="hidden">Widths of the hidden layers (may be empty: then it is a logistic regression).</param>
    /// <param name="classes">Number of classes.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public MlpClassifier(int inputs, IReadOnlyList<int> hidden, int classes) : base(nameof(MlpClassifier))
    {
        ArgumentNullException.ThrowIfNull(hidden);
        if (inputs < 1) throw new ArgumentOutOfRangeException(nameof(inputs), inputs, "Must be positive.");
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Need at least two classes.");
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        var width = inputs;
        for (var i = 0; i < hidden.Count; i++)
        {
            if (hidden[i] < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden[i], $"Hidden layer {i} must have a positive width.");
            modules.Add(($"fc{i}", nn.Linear(width, hidden[i])));
            modules.Add(($"act{i}", nn.ReLU()));
            width = hidden[i];
        }
        modules.Add(("out", nn.Linear(width, classes)));
        layers = nn.Sequential(modules);
        RegisterComponents();
    }

    /// <summary>Logits [B, classes] for inputs [B, …] (flattened from dimension 1).</summary>
    public override Tensor forward(Tensor input) => layers.call(input.flatten(1));
}

/// <summary>Multinomial logistic regression: a single dense layer from features to class logits.</summary>
public sealed class LogisticRegression : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear;

    /// <summary>Creates the model.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public LogisticRegression(int inputs, int classes) : base(nameof(LogisticRegression))
    {
        if (inputs < 1) throw new ArgumentOutOfRangeException(nameof(inputs), inputs, "Must be positive.");
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Need at least two classes.");
        linear = nn.Linear(inputs, classes);
        RegisterComponents();
    }

    /// <summary>Logits [B, classes] for inputs [B, …] (flattened from dimension 1).</summary>
    public override Tensor forward(Tensor input) => linear.call(input.flatten(1));
}
