using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Models;

/// <summary>
/// A small CNN for 28×28 grey-scale images (Fashion-MNIST, MNIST): conv3×3(c₁) → ReLU → max-pool 2 →
/// conv3×3(c₂) → ReLU → max-pool 2 → dense(h) → ReLU → dense(classes). With the defaults (32, 64, 128) it has
/// 421,642 parameters and reaches about 91–92% test accuracy on Fashion-MNIST as a MAP estimate.
/// </summary>
public sealed class SmallCnn : nn.Module<Tensor, Tensor>
{
    /// <summary>The prior standard deviation the study uses for this model (an isotropic N(0, 1) on every weight).</summary>
    public const double DefaultPriorSd = 1.0;

    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Linear fc1;
    private readonly Linear fc2;

    /// <summary>Creates the network with fresh (Kaiming-uniform) weights from TorchSharp's global generator.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A width or the number of classes is not positive.</exception>
    public SmallCnn(int classes = 10, int channels1 = 32, int channels2 = 64, int hidden = 128) : base(nameof(SmallCnn))
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Need at least two classes.");
        if (channels1 < 1) throw new ArgumentOutOfRangeException(nameof(channels1), channels1, "Must be positive.");
        if (channels2 < 1) throw new ArgumentOutOfRangeException(nameof(channels2), channels2, "Must be positive.");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "Must be positive.");
        conv1 = nn.Conv2d(1, channels1, 3, padding: 1);
        conv2 = nn.Conv2d(channels1, channels2, 3, padding: 1);
        fc1 = nn.Linear(channels2 * 7 * 7, hidden);
        fc2 = nn.Linear(hidden, classes);
        RegisterComponents();
    }

    /// <summary>Logits [B, classes] for images [B, 1, 28, 28].</summary>
    public override Tensor forward(Tensor input)
    {
        // No dispose scope here: hooks (per-sample gradients, GGN) keep the intermediate outputs; callers own the scope.
        var x = nn.functional.max_pool2d(nn.functional.relu(conv1.call(input)), 2);
        x = nn.functional.max_pool2d(nn.functional.relu(conv2.call(x)), 2);
        x = nn.functional.relu(fc1.call(x.flatten(1)));
        return fc2.call(x);
    }
}
