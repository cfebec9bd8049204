using System.Collections;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Trees;

/// <summary>
/// A named, ordered collection of tensors: the parameters (and everything shaped like them, such as momenta,
/// gradients or precisions) that every algorithm works on. It plays the role pytrees play in Python.
/// </summary>
/// <remarks>
/// <para>
/// <b>Order.</b> Leaves keep the order in which they were given (insertion order for dictionaries,
/// <c>named_parameters()</c> order for modules). <see cref="Flatten"/>, <see cref="Unflatten"/>, enumeration and
/// serialisation all use that one order, so a flat vector means the same thing everywhere.
/// </para>
/// <para>
/// <b>Sharing.</b> A tree holds references, not copies: <see cref="FromModule"/> shares the module's parameter
/// tensors, <see cref="Select(IEnumerable{string})"/> and <see cref="Insert"/> share the leaves they keep.
/// Copying operations (<see cref="Map(Func{Tensor, Tensor})"/>, <see cref="Clone"/>) return new tensors;
/// the <c>…InPlace</c> forms write into the existing leaves.
/// </para>
/// </remarks>
public sealed class ParameterTree : IReadOnlyList<KeyValuePair<string, Tensor>>
{
    private readonly string[] _names;
    private readonly Tensor[] _leaves;
    private readonly Dictionary<string, int> _index;

    /// <summary>Creates a tree from named tensors, keeping their order.</summary>
    /// <exception cref="ArgumentException">A name is empty or repeated, or a tensor is null.</exception>
    public ParameterTree(IEnumerable<KeyValuePair<string, Tensor>> leaves)
    {
        ArgumentNullException.ThrowIfNull(leaves);
        var names = new List<string>();
        var tensors = new List<Tensor>();
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, tensor) in leaves)
        {
            if (string.IsNullOrEmpty(name))
                throw new ArgumentException("A parameter name must not be empty.", nameof(leaves));
            if (tensor is null)
                throw new ArgumentException($"Parameter '{name}' has no tensor (null).", nameof(leaves));
            if (!_index.TryAdd(name, names.Count))
                throw new ArgumentException($"Parameter '{name}' appears twice.", nameof(leaves));
            names.Add(name);
            tensors.Add(tensor);
        }
        _names = names.ToArray();
        _leaves = tensors.ToArray();
    }

    private ParameterTree(string[] names, Tensor[] leaves, Dictionary<string, int> index)
    {
        _names = names;
        _leaves = leaves;
        _index = index;
    }

    /// <summary>Creates a tree from named tensors, keeping their order.</summary>
    public static ParameterTree FromDictionary(IEnumerable<KeyValuePair<string, Tensor>> leaves) => new(leaves);

    /// <summary>Creates a tree from (name, tensor) pairs, keeping their order.</summary>
    public static ParameterTree From(params (string Name, Tensor Tensor)[] leaves) =>
        new(leaves.Select(l => new KeyValuePair<string, Tensor>(l.Name, l.Tensor)));

    /// <summary>
    /// A tree of the module's parameters in <c>named_parameters()</c> order, sharing the module's tensors
    /// (names such as <c>fc1.weight</c>).
    /// </summary>
    /// <param name="module">The module.</param>
    /// <param name="trainableOnly">Keep only parameters with <c>requires_grad</c> set (frozen backbones, LoRA).</param>
    public static ParameterTree FromModule(nn.Module module, bool trainableOnly = false)
    {
        ArgumentNullException.ThrowIfNull(module);
        return new(module.named_parameters()
            .Where(p => !trainableOnly || p.parameter.requires_grad)
            .Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
    }

    /// <summary>The names, in the tree's order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The tensors, in the tree's order.</summary>
    public IReadOnlyList<Tensor> Leaves => _leaves;

    /// <summary>Number of leaves.</summary>
    public int Count => _leaves.Length;

    /// <summary>The leaf at a position in the tree's order.</summary>
    public KeyValuePair<string, Tensor> this[int index] => new(_names[index], _leaves[index]);

    /// <summary>The leaf with the given name.</summary>
    /// <exception cref="KeyNotFoundException">No leaf has that name; the message lists the names there are.</exception>
    public Tensor this[string name] => _leaves[IndexOf(name)];

    /// <summary>Whether a leaf has the given name.</summary>
    public bool Contains(string name) => _index.ContainsKey(name);

    /// <summary>Position of a leaf in the tree's order.</summary>
    /// <exception cref="KeyNotFoundException">No leaf has that name.</exception>
    public int IndexOf(string name) =>
        _index.TryGetValue(name, out var i)
            ? i
            : throw new KeyNotFoundException($"No parameter named '{name}'. The tree has: {string.Join(", ", _names)}.");

    /// <summary>Total number of scalar elements over all leaves.</summary>
    public long NumberOfElements
    {
        get
        {
            long n = 0;
            foreach (var t in _leaves) n += t.numel();
            return n;
        }
    }

    /// <summary>The device of the leaves (that of the first leaf; an empty tree reports the CPU).</summary>
    public Device Device => _leaves.Length > 0 ? _leaves[0].device : CPU;

    /// <summary>The dtype of the leaves (that of the first leaf; an empty tree reports float32).</summary>
    public ScalarType ScalarType => _leaves.Length > 0 ? _leaves[0].dtype : ScalarType.Float32;

    // ---------------------------------------------------------------- copying maps

    /// <summary>A new tree with <paramref name="f"/> applied to every leaf.</summary>
    public ParameterTree Map(Func<Tensor, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        var result = new Tensor[_leaves.Length];
        for (var i = 0; i < result.Length; i++) result[i] = f(_leaves[i]);
        return new ParameterTree(_names, result, _index);
    }

    /// <summary>A new tree with <paramref name="f"/> applied to every (name, leaf).</summary>
    public ParameterTree Map(Func<string, Tensor, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        var result = new Tensor[_leaves.Length];
        for (var i = 0; i < result.Length; i++) result[i] = f(_names[i], _leaves[i]);
        return new ParameterTree(_names, result, _index);
    }

    /// <summary>A new tree with <paramref name="f"/> applied leaf by leaf to this tree and <paramref name="other"/>.</summary>
    /// <exception cref="ArgumentException">The trees differ in names or shapes.</exception>
    public ParameterTree ZipMap(ParameterTree other, Func<Tensor, Tensor, Tensor> f)
    {
        EnsureSameStructure(other, nameof(other));
        var result = new Tensor[_leaves.Length];
        for (var i = 0; i < result.Length; i++) result[i] = f(_leaves[i], other._leaves[i]);
        return new ParameterTree(_names, result, _index);
    }

    /// <summary>A new tree with <paramref name="f"/> applied leaf by leaf to three trees of the same structure.</summary>
    public ParameterTree ZipMap(ParameterTree b, ParameterTree c, Func<Tensor, Tensor, Tensor, Tensor> f)
    {
        EnsureSameStructure(b, nameof(b));
        EnsureSameStructure(c, nameof(c));
        var result = new Tensor[_leaves.Length];
        for (var i = 0; i < result.Length; i++) result[i] = f(_leaves[i], b._leaves[i], c._leaves[i]);
        return new ParameterTree(_names, result, _index);
    }

    // ---------------------------------------------------------------- in-place

    /// <summary>Overwrites every leaf with <paramref name="f"/> of it (no gradient is recorded).</summary>
    public void MapInPlace(Func<Tensor, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        using var _ = no_grad();
        foreach (var leaf in _leaves)
        {
            using var scope = NewDisposeScope();
            leaf.copy_(f(leaf));
        }
    }

    /// <summary>Overwrites every leaf with <paramref name="f"/>(leaf, other leaf) (no gradient is recorded).</summary>
    public void ZipMapInPlace(ParameterTree other, Func<Tensor, Tensor, Tensor> f)
    {
        EnsureSameStructure(other, nameof(other));
        using var _ = no_grad();
        for (var i = 0; i < _leaves.Length; i++)
        {
            using var scope = NewDisposeScope();
            _leaves[i].copy_(f(_leaves[i], other._leaves[i]));
        }
    }

    /// <summary>Copies the values of <paramref name="source"/> into this tree's leaves (same names and shapes).</summary>
    public void CopyFrom(ParameterTree source)
    {
        EnsureSameStructure(source, nameof(source));
        using var _ = no_grad();
        for (var i = 0; i < _leaves.Length; i++) _leaves[i].copy_(source._leaves[i]);
    }

    // ---------------------------------------------------------------- structure

    /// <summary>A deep copy: new tensors with the same values, detached from any graph.</summary>
    public ParameterTree Clone() => Map(t => t.detach().clone());

    /// <summary>A tree of tensors detached from the autograd graph (sharing storage).</summary>
    public ParameterTree Detach() => Map(t => t.detach());

    /// <summary>A tree of zeros shaped like this one.</summary>
    public ParameterTree ZerosLike() => Map(t => zeros_like(t));

    /// <summary>A tree of ones shaped like this one.</summary>
    public ParameterTree OnesLike() => Map(t => ones_like(t));

    /// <summary>A tree filled with <paramref name="value"/>, shaped like this one.</summary>
    public ParameterTree FullLike(double value) => Map(t => full_like(t, value));

    /// <summary>Standard normal draws shaped like this one, from <paramref name="generator"/> when given.</summary>
    public ParameterTree RandnLike(Generator? generator = null) =>
        Map(t => randn(t.shape, dtype: t.dtype, device: t.device, generator: generator));

    /// <summary>The leaves moved to <paramref name="device"/> (a leaf already there is shared, not copied).</summary>
    public ParameterTree To(Device device) => Map(t => t.to(device));

    /// <summary>The leaves converted to <paramref name="dtype"/>.</summary>
    public ParameterTree To(ScalarType dtype) => Map(t => t.to_type(dtype));

    /// <summary>The subset with the given names, in this tree's order, sharing the leaves.</summary>
    /// <exception cref="KeyNotFoundException">A name is not in the tree.</exception>
    public ParameterTree Select(IEnumerable<string> names)
    {
        var wanted = new HashSet<string>(names, StringComparer.Ordinal);
        foreach (var n in wanted) IndexOf(n);
        return Where((name, _) => wanted.Contains(name));
    }

    /// <summary>The subset of leaves satisfying <paramref name="predicate"/>, in this tree's order, sharing them.</summary>
    public ParameterTree Where(Func<string, Tensor, bool> predicate) =>
        new(_names.Zip(_leaves).Where(p => predicate(p.First, p.Second))
            .Select(p => new KeyValuePair<string, Tensor>(p.First, p.Second)));

    /// <summary>The subset of leaves with <c>requires_grad</c> set (the trainable part, e.g. LoRA adapters).</summary>
    public ParameterTree RequiringGrad() => Where((_, t) => t.requires_grad);

    /// <summary>
    /// A new tree equal to this one with the leaves of <paramref name="subset"/> put in place of the leaves of
    /// the same names (the other leaves are shared).
    /// </summary>
    /// <exception cref="ArgumentException">A name of the subset is missing here or a shape differs.</exception>
    public ParameterTree Insert(ParameterTree subset)
    {
        ArgumentNullException.ThrowIfNull(subset);
        var result = (Tensor[])_leaves.Clone();
        for (var j = 0; j < subset.Count; j++)
        {
            var i = IndexInSuperset(subset, j);
            result[i] = subset._leaves[j];
        }
        return new ParameterTree(_names, result, _index);
    }

    /// <summary>Copies the values of <paramref name="subset"/> into the leaves of the same names.</summary>
    public void InsertInPlace(ParameterTree subset)
    {
        ArgumentNullException.ThrowIfNull(subset);
        using var _ = no_grad();
        for (var j = 0; j < subset.Count; j++) _leaves[IndexInSuperset(subset, j)].copy_(subset._leaves[j]);
    }

    private int IndexInSuperset(ParameterTree subset, int j)
    {
        var name = subset._names[j];
        if (!_index.TryGetValue(name, out var i))
            throw new ArgumentException($"Parameter '{name}' of the subset is not in this tree.", nameof(subset));
        if (!_leaves[i].shape.SequenceEqual(subset._leaves[j].shape))
            throw new ArgumentException(
                $"Parameter '{name}' has shape {Shape(subset._leaves[j])} in the subset but {Shape(_leaves[i])} here.", nameof(subset));
        return i;
    }

    /// <summary>Whether <paramref name="other"/> has the same names in the same order and the same shapes.</summary>
    public bool HasSameStructure(ParameterTree other) =>
        other is not null && other._names.Length == _names.Length &&
        _names.AsSpan().SequenceEqual(other._names) &&
        _leaves.Zip(other._leaves).All(p => p.First.shape.SequenceEqual(p.Second.shape));

    /// <summary>Throws unless <paramref name="other"/> has the same names, order and shapes.</summary>
    /// <exception cref="ArgumentException">Names the first parameter that differs.</exception>
    public void EnsureSameStructure(ParameterTree other, string paramName)
    {
        ArgumentNullException.ThrowIfNull(other, paramName);
        for (var i = 0; i < Math.Max(_names.Length, other._names.Length); i++)
        {
            if (i >= _names.Length)
                throw new ArgumentException($"Tree '{paramName}' has an extra parameter '{other._names[i]}'.", paramName);
            if (i >= other._names.Length)
                throw new ArgumentException($"Tree '{paramName}' lacks parameter '{_names[i]}'.", paramName);
            if (_names[i] != other._names[i])
                throw new ArgumentException(
                    $"Tree '{paramName}' has parameter '{other._names[i]}' where '{_names[i]}' was expected (position {i}).", paramName);
            if (!_leaves[i].shape.SequenceEqual(other._leaves[i].shape))
                throw new ArgumentException(
                    $"Parameter '{_names[i]}' has shape {Shape(other._leaves[i])} in '{paramName}' but {Shape(_leaves[i])} was expected.", paramName);
        }
    }

    // ---------------------------------------------------------------- flat vectors

    /// <summary>
    /// All leaves as one 1-D tensor: each leaf reshaped to 1-D (row-major) and concatenated in the tree's order.
    /// </summary>
    /// <exception cref="InvalidOperationException">The leaves have different dtypes (the first one that differs is named).</exception>
    public Tensor Flatten()
    {
        if (_leaves.Length == 0) return empty(0);
        for (var i = 1; i < _leaves.Length; i++)
            if (_leaves[i].dtype != _leaves[0].dtype)
                throw new InvalidOperationException(
                    $"Cannot flatten: parameter '{_names[i]}' is {_leaves[i].dtype} but '{_names[0]}' is {_leaves[0].dtype}.");
        return cat(_leaves.Select(t => t.reshape(-1)).ToArray());
    }

    /// <summary>The inverse of <see cref="Flatten"/>: a tree shaped like this one holding the values of <paramref name="flat"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="flat"/> is not 1-D or its length is not <see cref="NumberOfElements"/>.</exception>
    public ParameterTree Unflatten(Tensor flat)
    {
        ArgumentNullException.ThrowIfNull(flat);
        if (flat.dim() != 1)
            throw new ArgumentException($"Expected a 1-D tensor, got shape {Shape(flat)}.", nameof(flat));
        var n = NumberOfElements;
        if (flat.shape[0] != n)
            throw new ArgumentException(
                $"Vector of length {flat.shape[0]} cannot be unflattened into a tree of {n} elements ({Describe()}).", nameof(flat));
        var result = new Tensor[_leaves.Length];
        long offset = 0;
        for (var i = 0; i < result.Length; i++)
        {
            var count = _leaves[i].numel();
            result[i] = flat.narrow(0, offset, count).reshape(_leaves[i].shape);
            offset += count;
        }
        return new ParameterTree(_names, result, _index);
    }

    /// <summary>
    /// Where each leaf sits in the vector of <see cref="Flatten"/>: its name, offset, length and shape, in the tree's
    /// order. A dense precision or covariance over the flattened tree is read per leaf with these
    /// (<c>matrix.narrow(0, slot.Offset, slot.Length)</c>).
    /// </summary>
    public IReadOnlyList<LeafSlot> Layout
    {
        get
        {
            var slots = new LeafSlot[_leaves.Length];
            long offset = 0;
            for (var i = 0; i < slots.Length; i++)
            {
                var length = _leaves[i].numel();
                slots[i] = new LeafSlot(_names[i], offset, length, _leaves[i].shape);
                offset += length;
            }
            return slots;
        }
    }

    /// <summary>
    /// The inverse of flattening row by row: <paramref name="rows"/> [n, <see cref="NumberOfElements"/>] becomes a tree
    /// shaped like this one with a leading dimension n on every leaf (contiguous copies), e.g. n draws of a Gaussian.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="rows"/> is not 2-D or its width is not <see cref="NumberOfElements"/>.</exception>
    public ParameterTree UnflattenRows(Tensor rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.dim() != 2 || rows.shape[1] != NumberOfElements)
            throw new ArgumentException($"Expected rows of shape [n, {NumberOfElements}], got {Shape(rows)} ({Describe()}).", nameof(rows));
        var n = rows.shape[0];
        var result = new Tensor[_leaves.Length];
        foreach (var (slot, i) in Layout.Select((s, i) => (s, i)))
            result[i] = rows.narrow(1, slot.Offset, slot.Length).reshape(new[] { n }.Concat(slot.Shape).ToArray()).contiguous();
        return new ParameterTree(_names, result, _index);
    }

    // ---------------------------------------------------------------- arithmetic used by the algorithms

    /// <summary>this + alpha · other, leaf by leaf.</summary>
    public ParameterTree Add(ParameterTree other, double alpha = 1.0) => ZipMap(other, (a, b) => a.add(b, alpha));

    /// <summary>this · scale, leaf by leaf.</summary>
    public ParameterTree Multiply(double scale) => Map(t => t.mul(scale));

    /// <summary>Σ over all leaves of the elementwise product with <paramref name="other"/> (a scalar tensor).</summary>
    public Tensor Dot(ParameterTree other)
    {
        EnsureSameStructure(other, nameof(other));
        if (_leaves.Length == 0) return zeros(1).squeeze();
        Tensor? total = null;
        for (var i = 0; i < _leaves.Length; i++)
        {
            var d = (_leaves[i] * other._leaves[i]).sum();
            total = total is null ? d : total + d;
        }
        return total!;
    }

    /// <summary>Σ over all leaves of the sum of <paramref name="f"/>(leaf) (a scalar tensor).</summary>
    public Tensor SumOf(Func<Tensor, Tensor> f)
    {
        if (_leaves.Length == 0) return zeros(1).squeeze();
        Tensor? total = null;
        foreach (var leaf in _leaves)
        {
            var s = f(leaf).sum();
            total = total is null ? s : total + s;
        }
        return total!;
    }

    // ---------------------------------------------------------------- dispose scopes

    /// <summary>Moves every leaf out of the current dispose scope so it survives the scope; returns this tree.</summary>
    public ParameterTree MoveToOuterDisposeScope()
    {
        foreach (var t in _leaves) t.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Detaches every leaf from any dispose scope (the caller owns them); returns this tree.</summary>
    public ParameterTree DetachFromDisposeScope()
    {
        foreach (var t in _leaves) t.DetachFromDisposeScope();
        return this;
    }

    /// <summary>Disposes every leaf's native tensor. Only for trees that own their leaves.</summary>
    public void DisposeLeaves()
    {
        foreach (var t in _leaves) t.Dispose();
    }

    // ---------------------------------------------------------------- enumeration and display

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator()
    {
        for (var i = 0; i < _leaves.Length; i++) yield return new(_names[i], _leaves[i]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>"name [shape], …" for messages.</summary>
    public string Describe() => string.Join(", ", _names.Zip(_leaves).Select(p => $"{p.First} {Shape(p.Second)}"));

    /// <inheritdoc />
    public override string ToString() => $"ParameterTree({Describe()})";

    internal static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}

/// <summary>Where one leaf sits in a flattened tree (<see cref="ParameterTree.Layout"/>).</summary>
/// <param name="Name">The leaf's name.</param>
/// <param name="Offset">Index of its first element in the flat vector.</param>
/// <param name="Length">Number of elements.</param>
/// <param name="Shape">The leaf's shape.</param>
public sealed record LeafSlot(string Name, long Offset, long Length, long[] Shape);
