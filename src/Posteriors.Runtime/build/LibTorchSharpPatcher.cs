// This file is compiled twice: into Posteriors.Runtime (POSTERIORS_RUNTIME defined), where a module
// initializer applies the fix before TorchSharp's first use, and by MSBuild's RoslynCodeTaskFactory from
// build/Posteriors.Runtime.targets, where the task below patches the copy in the build output.
// Keep it free of dependencies other than the BCL (and Microsoft.Build for the task).
#nullable enable
using System;
using System.IO;
using System.Text;

namespace Posteriors.Native
{
    /// <summary>
    /// Makes TorchSharp 0.107.0's <c>libLibTorchSharp.so</c> load on Linux systems whose libstdc++ predates
    /// GCC 13 (Debian 12 among them). The library asks for the symbol version <c>GLIBCXX_3.4.32</c> for a single
    /// symbol it never calls at run time; marking that one version requirement weak (<c>VER_FLG_WEAK</c>) in a
    /// copy of the library lets the dynamic loader accept it. Nothing is patched where libstdc++ already
    /// provides the version.
    /// </summary>
    internal static class LibTorchSharpPatcher
    {
        /// <summary>The version requirement that Debian 12's libstdc++ cannot satisfy.</summary>
        public const string MissingVersion = "GLIBCXX_3.4.32";

        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlagWeak = 0x2;

        /// <summary>What <see cref="PatchFile"/> did.</summary>
        public enum Outcome
        {
            /// <summary>The requirement was strong and is now weak.</summary>
            Patched,
            /// <summary>The requirement was already weak.</summary>
            AlreadyPatched,
            /// <summary>The file has no such requirement (another TorchSharp build): nothing to do.</summary>
            NotNeeded,
        }

        /// <summary>Whether the system's libstdc++ already defines <see cref="MissingVersion"/>.</summary>
        public static bool SystemLibStdCxxHasVersion(out string? libraryPath)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib64/libstdc++.so.6",
            };
            foreach (var candidate in candidates)
            {
                if (!File.Exists(candidate)) continue;
                libraryPath = candidate;
                return IndexOf(File.ReadAllBytes(candidate), Encoding.ASCII.GetBytes(MissingVersion + "\0"), 0) >= 0;
            }
            // No libstdc++ found where distributions put it: assume a system that needs no help.
            libraryPath = null;
            return true;
        }

        /// <summary>
        /// Marks the <see cref="MissingVersion"/> requirement of the ELF file at <paramref name="path"/> weak.
        /// The file is rewritten through a temporary file and a rename, so a hard link into the NuGet cache
        /// is never modified and a crash leaves either the old or the new file.
        /// </summary>
        /// <exception cref="InvalidDataException">The file is not a 64-bit little-endian ELF library.</exception>
        public static Outcome PatchFile(string path)
        {
            var bytes = File.ReadAllBytes(path);
            var offset = FindVernauxFlagsOffset(bytes, path);
            if (offset < 0) return Outcome.NotNeeded;
            var flags = ReadU16(bytes, offset);
            if ((flags & VerFlagWeak) != 0) return Outcome.AlreadyPatched;
            WriteU16(bytes, offset, (ushort)(flags | VerFlagWeak));

            var lastWrite = File.GetLastWriteTimeUtc(path);
            var temp = path + ".posteriors-" + Guid.NewGuid().ToString("N") + ".tmp";
            try
            {
                File.WriteAllBytes(temp, bytes);
                // Keep the timestamp so that MSBuild's incremental copy still sees the file as up to date.
                File.SetLastWriteTimeUtc(temp, lastWrite);
                File.Replace(temp, path, null); // a rename: atomic, and never writes through a hard link
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            return Outcome.Patched;
        }

        /// <summary>Whether the file still carries a strong <see cref="MissingVersion"/> requirement.</summary>
        public static bool NeedsPatch(string path)
        {
            var bytes = File.ReadAllBytes(path);
            var offset = FindVernauxFlagsOffset(bytes, path);
            return offset >= 0 && (ReadU16(bytes, offset) & VerFlagWeak) == 0;
        }

        // Walks .gnu.version_r (Elf64_Verneed / Elf64_Vernaux records) and returns the file offset of the
        // vna_flags field of the auxiliary entry named MissingVersion, or -1 when there is none.
        private static long FindVernauxFlagsOffset(byte[] elf, string path)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException($"'{path}' is not an ELF file.");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException($"'{path}' is not a 64-bit little-endian ELF file (class {elf[4]}, data {elf[5]}).");

            var shoff = (long)ReadU64(elf, 0x28);
            var shentsize = ReadU16(elf, 0x3A);
            var shnum = ReadU16(elf, 0x3C);
            if (shoff <= 0 || shentsize < 64 || shoff + (long)shentsize * shnum > elf.Length)
                throw new InvalidDataException($"'{path}' has an unreadable section header table.");

            for (var i = 0; i < shnum; i++)
            {
                var sh = shoff + (long)i * shentsize;
                if (ReadU32(elf, sh + 4) != ShtGnuVerneed) continue;
                var verneedOffset = (long)ReadU64(elf, sh + 0x18);
                var link = ReadU32(elf, sh + 0x28);
                var strtab = shoff + (long)link * shentsize;
                var strOffset = (long)ReadU64(elf, strtab + 0x18);
                var entries = (int)ReadU32(elf, sh + 0x2C); // sh_info: number of Verneed records

                var vn = verneedOffset;
                for (var n = 0; n < entries; n++)
                {
                    var count = ReadU16(elf, vn + 2);
                    var aux = vn + ReadU32(elf, vn + 8);
                    for (var a = 0; a < count; a++)
                    {
                        var name = ReadCString(elf, strOffset + ReadU32(elf, aux + 8));
                        if (name == MissingVersion) return aux + 4;
                        var next = ReadU32(elf, aux + 12);
                        if (next == 0) break;
                        aux += next;
                    }
                    var nextNeed = ReadU32(elf, vn + 12);
                    if (nextNeed == 0) break;
                    vn += nextNeed;
                }
            }
            return -1;
        }

        private static ushort ReadU16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
        private static uint ReadU32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
        private static ulong ReadU64(byte[] b, long o) => ReadU32(b, o) | (ulong)ReadU32(b, o + 4) << 32;
        private static void WriteU16(byte[] b, long o, ushort v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }

        private static string ReadCString(byte[] b, long o)
        {
            var end = o;
            while (end < b.Length && b[end] != 0) end++;
            return Encoding.ASCII.GetString(b, (int)o, (int)(end - o));
        }

        private static int IndexOf(byte[] haystack, byte[] needle, int start)
        {
            for (var i = start; i <= haystack.Length - needle.Length; i++)
            {
                var j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }
    }

#if !POSTERIORS_RUNTIME
    /// <summary>MSBuild task: patches every <c>libLibTorchSharp.so</c> under the output folder when needed.</summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>The folder to search (the build or publish output).</summary>
        [Microsoft.Build.Framework.Required]
        public string Directory { get; set; } = "";

        /// <inheritdoc />
        public override bool Execute()
        {
            if (LibTorchSharpPatcher.SystemLibStdCxxHasVersion(out var libstdcxx))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    "Posteriors: libstdc++ provides " + LibTorchSharpPatcher.MissingVersion + "; libLibTorchSharp.so left as shipped.");
                return true;
            }
            if (!System.IO.Directory.Exists(Directory)) return true;
            foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                try
                {
                    var outcome = LibTorchSharpPatcher.PatchFile(file);
                    if (outcome == LibTorchSharpPatcher.Outcome.Patched)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                            "Posteriors: marked " + LibTorchSharpPatcher.MissingVersion + " weak in " + file + " (" + libstdcxx + " lacks it).");
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is InvalidDataException)
                {
                    Log.LogWarning("Posteriors: could not patch " + file + " so that TorchSharp loads with " + libstdcxx +
                                   ": " + e.Message + " TorchSharp will fail to load; install a libstdc++ that provides " +
                                   LibTorchSharpPatcher.MissingVersion + " or make the file writable and rebuild.");
                }
            }
            return true;
        }
    }
#endif
}
