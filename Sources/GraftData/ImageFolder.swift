import Foundation
import GraftCore

/// Labelled image files in torchvision's `ImageFolder` layout, `root/<class>/…/<file>`: listed first, decoded
/// later, so that only the rows kept (after `limit-per-class`) are ever decoded.
public struct ImageFolder: Sendable {
    /// Image files in row order, and each one's class.
    public let files: [String]
    public let labels: [Int]
    /// Class names by label: the sub-folders of the root, sorted.
    public let classNames: [String]
    /// Files skipped for their extension (not .png, .jpg or .jpeg).
    public let skipped: [String]

    /// The extensions read, case-insensitively; a file's content decides how it is decoded.
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    public var count: Int { files.count }

    /// Lists `path` as torchvision does: classes are the sub-folders sorted by name (byte order), label `i` is
    /// `classNames[i]`; each class's files are found through its sub-folders recursively, in sorted order. Hidden
    /// entries (names starting with ".") are ignored, other extensions skipped and listed in `skipped`. Throws
    /// `DataError` naming the path when the folder is missing, has no class sub-folders, or a class has no images.
    public static func list(_ path: String) throws -> ImageFolder {
        guard isFolder(path) else {
            throw DataError(file: path, line: nil, problem: FileManager.default.fileExists(atPath: path)
                            ? "not a folder (expected one sub-folder per class)" : "no such folder")
        }
        let classNames = try visibleEntries(of: path).filter { isFolder(join(path, $0)) }
        guard !classNames.isEmpty else {
            throw DataError(file: path, line: nil, problem: "no class sub-folders (expected one sub-folder per class)")
        }
        var files: [String] = [], labels: [Int] = [], skipped: [String] = []
        for (label, name) in classNames.enumerated() {
            let folder = join(path, name)
            var found = 0
            func walk(_ directory: String) throws {
                for entry in try visibleEntries(of: directory) {
                    let file = join(directory, entry)
                    if isFolder(file) { try walk(file); continue }
                    guard extensions.contains((entry as NSString).pathExtension.lowercased()) else {
                        skipped.append(file)
                        continue
                    }
                    files.append(file)
                    labels.append(label)
                    found += 1
                }
            }
            try walk(folder)
            if found == 0 { throw DataError(file: folder, line: nil, problem: "class folder has no .png, .jpg or .jpeg files") }
        }
        return ImageFolder(files: files, labels: labels, classNames: classNames, skipped: skipped)
    }

    /// The rows at `indices`, in that order, with the same class names.
    public func subset(_ indices: [Int]) -> ImageFolder {
        ImageFolder(files: indices.map { files[$0] }, labels: indices.map { labels[$0] }, classNames: classNames,
                    skipped: skipped)
    }

    /// Every file decoded (`PixelImage.decode`), given `channels` (1 or 3) and resampled to height × width
    /// (antialiased bilinear, `resizeImages`) when its size differs: [N, channels, height, width] of 0–255 values.
    /// The first file that cannot be decoded stops the load with a `DataError` naming it: skipping it would quietly
    /// train on less data than the folder holds.
    public func images(channels: Int, height: Int, width: Int) throws -> Tensor {
        require(channels == 1 || channels == 3, "ImageFolder.images: \(channels) channels; images have 1 or 3")
        let plane = channels * height * width
        let all = Storage(count: files.count * plane)
        for (row, file) in files.enumerated() {
            var image = try PixelImage.decode(path: file).converted(toChannels: channels).tensor
            if image.shape[1] != height || image.shape[2] != width {
                image = resizeImages(image.reshaped([1] + image.shape), height: height, width: width)
            }
            (all.pointer + row * plane).update(from: image.pointer, count: plane)
        }
        return Tensor(shape: [files.count, channels, height, width], storage: all)
    }
}
