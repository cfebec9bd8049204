using System.Collections;
using System.Reflection;
using Posteriors.Trees;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Posteriors.Serialization;

/// <summary>
/// Pretrained weights in and out: a PyTorch <c>state_dict</c> saved with <c>torch.save</c> (<c>.pt</c>, <c>.pth</c>,
/// read through TorchSharp.PyBridge) or a safetensors file, loaded into a <see cref="ParameterTree"/> or a TorchSharp
/// module with every name and shape checked first; trees written to safetensors for Python.
/// </summary>
public static class WeightsFile
{
    /// <summary>
    /// Every tensor in the file, on the CPU: safetensors in the order of their data, a PyTorch file in name order (its
    /// dictionary does not keep one). The format is told by the content (a PyTorch file is a zip archive), not the name.
    /// </summary>
    /// <param name="path">A <c>.pt</c>/<c>.pth</c> state_dict or a <c>.safetensors</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is corrupt or holds something other than a state_dict of tensors.</exception>
    public static ParameterTree Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"The weights file '{path}' does not exist.", path);
        return IsZip(path) ? LoadPyTorch(path) : SafeTensors.Load(path);
    }

    /// <summary>
    /// The file's tensors shaped and ordered like <paramref name="like"/>, converted to its leaves' dtype and device.
    /// </summary>
    /// <param name="path">The weights file.</param>
    /// <param name="like">The tree the weights must match (names and shapes), e.g. <see cref="ParameterTree.FromModule"/>.</param>
    /// <exception cref="ArgumentException">A tensor of <paramref name="like"/> is missing from the file, the file has one it lacks, or a shape differs; the message names each.</exception>
    public static ParameterTree LoadLike(string path, ParameterTree like)
    {
        ArgumentNullException.ThrowIfNull(like);
        var loaded = Load(path);
        try
        {
            EnsureMatches(path, loaded, like);
            return new ParameterTree(like.Select(p => new KeyValuePair<string, Tensor>(p.Key, loaded[p.Key].to(p.Value.dtype).to(p.Value.device))));
        }
        finally
        {
            loaded.DisposeLeaves();
        }
    }

    /// <summary>
    /// Copies the file's tensors into <paramref name="module"/>'s parameters and buffers (its <c>state_dict</c>); nothing is
    /// copied unless every name and shape matches.
    /// </summary>
    /// <param name="module">The module (its architecture must be the one the weights were trained with).</param>
    /// <param name="path">The weights file.</param>
    /// <exception cref="ArgumentException">A tensor is missing, extra or mis-shaped; the message names each.</exception>
    public static void LoadInto(nn.Module module, string path)
    {
        ArgumentNullException.ThrowIfNull(module);
        var state = module.state_dict();
        var like = new ParameterTree(state.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value)));
        using var scope = NewDisposeScope();
        var loaded = LoadLike(path, like);
        using (no_grad())
            foreach (var (name, value) in loaded) state[name].copy_(value);
    }

    /// <summary>Writes a tree to a new safetensors file (never over an existing one); see <see cref="SafeTensors.Save"/>.</summary>
    public static void Save(string path, ParameterTree tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensors.Save(path, tensors, metadata);

    /// <summary>Names every missing, extra and mis-shaped tensor at once, so one error says everything that is wrong.</summary>
    internal static void EnsureMatches(string path, ParameterTree loaded, ParameterTree like)
    {
        var problems = new List<string>();
        var missing = like.Names.Where(n => !loaded.Contains(n)).ToList();
        var extra = loaded.Names.Where(n => !like.Contains(n)).ToList();
        if (missing.Count > 0) problems.Add("missing " + string.Join(", ", missing.Select(n => $"'{n}' {ParameterTree.Shape(like[n])}")));
        if (extra.Count > 0) problems.Add("not in the model " + string.Join(", ", extra.Select(n => $"'{n}' {ParameterTree.Shape(loaded[n])}")));
        foreach (var (name, leaf) in like)
            if (loaded.Contains(name) && !loaded[name].shape.SequenceEqual(leaf.shape))
                problems.Add($"'{name}' is {ParameterTree.Shape(loaded[name])} in the file but {ParameterTree.Shape(leaf)} in the model");
        if (problems.Count > 0)
            throw new ArgumentException($"The weights in '{path}' do not fit this architecture: {string.Join("; ", problems)}.", nameof(path));
    }

    private static bool IsZip(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var file = File.OpenRead(path);
        return file.Read(magic) == 4 && magic[0] == 0x50 && magic[1] == 0x4b && magic[2] == 0x03 && magic[3] == 0x04;
    }

    // TorchSharp.PyBridge 1.4.4 (the pinned version) reads a state_dict only into a module, where a mismatch surfaces
    // as TorchSharp's own error; its unpickler gives the dictionary itself, so names and shapes can be checked before
    // anything is copied. It is internal, hence reached by name.
    private static readonly MethodInfo? Unpickle = typeof(PyBridgeModuleExtensions).Assembly.GetTypes()
        .Where(t => t.Name == "PyTorchUnpickler")
        .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static))
        .FirstOrDefault(m => m.Name == "UnpickleStateDict" && m.GetParameters() is { Length: > 0 } p && p[0].ParameterType == typeof(Stream));

    private static ParameterTree LoadPyTorch(string path)
    {
        if (Unpickle is null)
            throw new InvalidOperationException("This TorchSharp.PyBridge has no PyTorchUnpickler.UnpickleStateDict; use the version Posteriors pins (1.4.4).");
        Hashtable table;
        try
        {
            using var stream = File.OpenRead(path);
            var arguments = Unpickle.GetParameters().Select((p, i) => i == 0 ? stream : p.HasDefaultValue ? p.DefaultValue : null).ToArray();
            table = (Hashtable)Unpickle.Invoke(null, arguments)!;
        }
        catch (Exception e) when (e is TargetInvocationException or InvalidCastException)
        {
            var inner = (e as TargetInvocationException)?.InnerException ?? e;
            throw new InvalidDataException($"'{path}' is not a readable PyTorch state_dict: {inner.Message}", inner);
        }
        var leaves = new List<KeyValuePair<string, Tensor>>();
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string name || entry.Value is not Tensor tensor)
                throw new InvalidDataException($"'{path}' holds the entry '{entry.Key}' ({entry.Value?.GetType().Name ?? "null"}), not a tensor: save model.state_dict().");
            leaves.Add(new(name, tensor));
        }
        return new ParameterTree(leaves.OrderBy(l => l.Key, StringComparer.Ordinal));
    }
}
